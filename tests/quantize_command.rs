//! `iq-tui quantize` on .npy files: good, and bad in every way a user's file can be.

mod common;
use common::{iq_tui, text};
use iq_tui::quantize_file::{read_npy, write_npy, Matrix};
use npyz::WriterBuilder;

fn matrix(rows: usize, cols: usize) -> Matrix {
    let values = (0..rows * cols)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
        .collect();
    Matrix { rows, cols, values }
}

#[test]
fn quantizes_a_matrix_and_writes_the_dequantized_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("w.npy"), tmp.path().join("q.npy"));
    write_npy(&input, &matrix(8, 50)).unwrap();
    let o = iq_tui(&[
        "quantize",
        input.to_str().unwrap(),
        "--bits",
        "2",
        "--method",
        "alternating",
        "--out",
        output.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains("8×50, 2 bits, alternating") && stdout.contains("relative squared error"),
        "{stdout}"
    );
    let q = read_npy(&output).unwrap();
    assert_eq!((q.rows, q.cols), (8, 50));
    // each row takes at most 2^2 distinct values
    for r in 0..8 {
        let mut row = q.values[r * 50..(r + 1) * 50].to_vec();
        row.sort_by(f32::total_cmp);
        row.dedup();
        assert!(row.len() <= 4, "row {r}: {row:?}");
    }
    // the printed error is the error of the written file
    let w = read_npy(&input).unwrap();
    let err = iq_tui::compress::relative_error(&w.values, &q.values);
    assert!(stdout.contains(&format!("{err:.6}")), "{stdout} vs {err}");

    let o = iq_tui(&[
        "quantize",
        input.to_str().unwrap(),
        "--bits",
        "1",
        "--mask-rate",
        "0.5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("sparsity 50.0 %"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn bad_files_get_clear_errors_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |n: &str| tmp.path().join(n);

    // float64
    let mut w = npyz::WriteOptions::<f64>::new()
        .default_dtype()
        .shape(&[2, 2])
        .writer(std::fs::File::create(path("f64.npy")).unwrap())
        .begin_nd()
        .unwrap();
    w.extend([1.0, 2.0, 3.0, 4.0]).unwrap();
    w.finish().unwrap();
    // 1-D
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[4])
        .writer(std::fs::File::create(path("vec.npy")).unwrap())
        .begin_nd()
        .unwrap();
    w.extend([1.0f32, 2.0, 3.0, 4.0]).unwrap();
    w.finish().unwrap();
    // truncated: a good file cut short
    write_npy(&path("good.npy"), &matrix(4, 10)).unwrap();
    let bytes = std::fs::read(path("good.npy")).unwrap();
    std::fs::write(path("cut.npy"), &bytes[..bytes.len() - 7]).unwrap();
    // not npy at all
    std::fs::write(path("text.npy"), "hello").unwrap();
    // NaN inside
    let mut nan = matrix(2, 3);
    nan.values[4] = f32::NAN;
    write_npy(&path("nan.npy"), &nan).unwrap();

    for (file, needles) in [
        ("f64.npy", &["f64.npy", "float32", "astype"][..]),
        ("vec.npy", &["vec.npy", "[4]", "2-D"][..]),
        ("cut.npy", &["cut.npy", "truncated"][..]),
        ("text.npy", &["text.npy", "not a readable .npy"][..]),
        ("nan.npy", &["nan.npy", "row 1, column 1", "NaN"][..]),
        ("missing.npy", &["missing.npy"][..]),
    ] {
        let o = iq_tui(&["quantize", path(file).to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        for n in needles {
            assert!(err.contains(n), "{file}: missing {n:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = iq_tui(&[
        "quantize",
        path("good.npy").to_str().unwrap(),
        "--bits",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn fortran_order_files_are_read_row_major() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("f.npy");
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .order(npyz::Order::Fortran)
        .shape(&[2, 3])
        .writer(std::fs::File::create(&p).unwrap())
        .begin_nd()
        .unwrap();
    // column-major data of [[1, 2, 3], [4, 5, 6]]
    w.extend([1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
    w.finish().unwrap();
    assert_eq!(read_npy(&p).unwrap().values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}
