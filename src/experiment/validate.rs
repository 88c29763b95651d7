//! Semantic checks: values the types allow but the method does not.

use super::{
    DataSource, Experiment, Length, LrPolicy, MatrixSet, Problem, PruneSchedule, QuantMethod,
    RetrainConfig,
};

/// Largest `model.layers` (checked below); matrix names are only listed
/// for a layer count in range, so a forged one never builds billions.
const MAX_LAYERS: usize = 16;

fn check_matrices(
    need: &mut impl FnMut(bool, &str, String, &str),
    field: &str,
    set: &MatrixSet,
    (layers, tied): (usize, bool),
) {
    if layers > MAX_LAYERS {
        return; // reported as model.layers
    }
    if let Err(message) = set.resolve(layers, tied) {
        need(
            false,
            field,
            message,
            "All, Lstm, Embedding, Decoder or Named([\"…\"])",
        );
    }
}

fn check_retrain(need: &mut impl FnMut(bool, &str, String, &str), field: &str, r: &RetrainConfig) {
    let n = match r.length {
        Length::Steps(n) | Length::Epochs(n) => n,
    };
    need(
        n >= 1,
        &format!("{field}.length"),
        "must be at least 1 step or epoch".into(),
        "Steps(n) or Epochs(n) with n ≥ 1",
    );
    need(
        r.lr.is_finite() && r.lr > 0.0,
        &format!("{field}.lr"),
        format!("{} is not a learning rate", r.lr),
        "a positive number",
    );
    need(
        r.decay.is_finite() && r.decay > 0.0 && r.decay <= 1.0,
        &format!("{field}.decay"),
        format!("{} would not keep or lower the rate", r.decay),
        "a number in (0, 1]",
    );
}

/// Tokens one training batch needs, `None` when it overflows.
fn one_batch(e: &Experiment) -> Option<usize> {
    e.training
        .batch_size
        .checked_mul(e.training.bptt)?
        .checked_add(1)
}

/// Every problem found; empty when the experiment can run.
pub fn check(e: &Experiment) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut need = |ok: bool, field: &str, message: String, allowed: &str| {
        if !ok {
            out.push(Problem::field(field, message, allowed));
        }
    };

    let name_ok = !e.name.is_empty()
        && e.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    need(
        name_ok,
        "name",
        format!("{:?} cannot be used in a directory name", e.name),
        "a non-empty name of letters, digits, '.', '_' and '-'",
    );

    match &e.data {
        DataSource::Ptb { dir: Some(dir) } => {
            need(
                dir.is_dir(),
                "data.dir",
                format!("the directory {} does not exist", dir.display()),
                "a directory holding ptb.train.txt, ptb.valid.txt and ptb.test.txt, or None to use IQ_TUI_PTB_DIR or the download cache",
            );
        }
        DataSource::WikiText2 { dir: Some(dir) } => {
            need(
                dir.is_dir(),
                "data.dir",
                format!("the directory {} does not exist", dir.display()),
                "a directory holding wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens, or None to use IQ_TUI_WIKITEXT2_DIR or the download cache",
            );
        }
        DataSource::Text {
            dir,
            max_vocab,
            min_count,
            unk,
            ..
        } => {
            need(
                dir.is_dir(),
                "data.dir",
                format!("the directory {} does not exist", dir.display()),
                "a directory holding train.txt, valid.txt and test.txt (or wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens, or the files named by data.train, data.valid and data.test)",
            );
            need(
                *min_count >= 1,
                "data.min_count",
                format!("{min_count} is not a word count"),
                "an integer of at least 1",
            );
            need(
                max_vocab.is_none_or(|v| v >= 3),
                "data.max_vocab",
                format!(
                    "{max_vocab:?} leaves no room for a word besides <eos> and the unknown token"
                ),
                "None, or an integer of at least 3",
            );
            need(
                !unk.is_empty() && !unk.chars().any(char::is_whitespace),
                "data.unk",
                format!("{unk:?} cannot be a token"),
                "a non-empty token without whitespace, e.g. \"<unk>\"",
            );
        }
        DataSource::Ptb { dir: None }
        | DataSource::WikiText2 { dir: None }
        | DataSource::Synthetic { .. } => {}
    }
    if let DataSource::Ptb { .. } = &e.data {
        // Mikolov's training split (docs/method.md §7).
        const PTB_TRAIN_TOKENS: usize = 929_589;
        if one_batch(e).is_none_or(|b| b > PTB_TRAIN_TOKENS) {
            need(
                false,
                "training.batch_size",
                format!(
                    "batch_size × bptt = {} × {} is more than Penn Treebank's {PTB_TRAIN_TOKENS} training tokens",
                    e.training.batch_size, e.training.bptt
                ),
                "batch_size × bptt + 1 ≤ 929589",
            );
        }
    }
    match &e.data {
        DataSource::Ptb { .. } | DataSource::WikiText2 { .. } | DataSource::Text { .. } => {}
        DataSource::Synthetic {
            vocab,
            train_tokens,
            valid_tokens,
            test_tokens,
        } => {
            need(
                (4..=1_000_000).contains(vocab),
                "data.vocab",
                format!("{vocab} words is not a usable vocabulary"),
                "an integer from 4 to 1000000",
            );
            match one_batch(e) {
                Some(one_batch) => need(
                    *train_tokens >= one_batch,
                    "data.train_tokens",
                    format!("{train_tokens} tokens do not fill one training batch of batch_size × bptt + 1 = {one_batch}"),
                    &format!("an integer ≥ {one_batch}"),
                ),
                None => need(
                    false,
                    "training.batch_size",
                    format!(
                        "batch_size × bptt = {} × {} does not fit in any corpus",
                        e.training.batch_size, e.training.bptt
                    ),
                    "a batch of batch_size × bptt tokens no larger than the training split",
                ),
            }
            for (field, n) in [
                ("data.valid_tokens", valid_tokens),
                ("data.test_tokens", test_tokens),
            ] {
                need(
                    *n >= 2,
                    field,
                    format!("{n} tokens cannot be evaluated"),
                    "an integer ≥ 2",
                );
            }
        }
    }

    let m = &e.model;
    need(
        m.layers >= 1 && m.layers <= MAX_LAYERS,
        "model.layers",
        format!("{} layers", m.layers),
        "an integer from 1 to 16",
    );
    need(
        m.hidden >= 1,
        "model.hidden",
        format!("must be at least 1 (got {})", m.hidden),
        "an integer ≥ 1",
    );
    if let Some(embed) = m.embed {
        need(
            embed >= 1,
            "model.embed",
            format!("must be at least 1 (got {embed})"),
            "an integer ≥ 1, or None for the hidden size",
        );
    }
    need(
        !m.tied || m.embed_size() == m.hidden,
        "model.tied",
        format!(
            "the decoder is {} wide and the embedding {}: tied, they are one matrix",
            m.hidden,
            m.embed_size()
        ),
        "tied: true with embed: None (or equal to hidden), or tied: false",
    );
    need(
        (0.0..1.0).contains(&m.dropout),
        "model.dropout",
        format!("{} is not a dropout probability", m.dropout),
        "a number in [0, 1): 0 disables dropout",
    );
    need(
        m.init_range.is_finite() && m.init_range > 0.0,
        "model.init_range",
        format!("{} cannot bound a uniform initialisation", m.init_range),
        "a positive number, e.g. 0.1",
    );

    let t = &e.training;
    need(
        t.epochs >= 1 || e.pretrained.is_some(),
        "training.epochs",
        format!(
            "must be at least 1 (got {}) without pretrained weights",
            t.epochs
        ),
        "an integer ≥ 1, or ≥ 0 with `pretrained`",
    );
    if let Some(dir) = &e.pretrained {
        // a PyTorch state dict (store::torch) rather than a weights directory
        let state_dict = dir.extension().is_some_and(|e| e == "safetensors");
        need(
            if state_dict {
                dir.is_file()
            } else {
                dir.join("model.json").is_file() || dir.join("weights/fp/model.json").is_file()
            },
            "pretrained",
            if state_dict {
                format!("{} does not exist", dir.display())
            } else {
                format!("{} holds no saved weights (model.json)", dir.display())
            },
            "a run directory (its weights/fp is used), a weights directory with model.json, or a PyTorch state dict (.safetensors, vocab.txt beside it)",
        );
    }
    need(
        t.batch_size >= 1,
        "training.batch_size",
        format!("must be at least 1 (got {})", t.batch_size),
        "an integer ≥ 1",
    );
    need(
        t.bptt >= 1,
        "training.bptt",
        format!("must be at least 1 (got {})", t.bptt),
        "an integer ≥ 1",
    );
    need(
        t.lr.is_finite() && t.lr > 0.0,
        "training.lr",
        format!("{} is not a learning rate", t.lr),
        "a positive number",
    );
    if let Some(clip) = t.clip {
        need(
            clip.is_finite() && clip > 0.0,
            "training.clip",
            format!("{clip} is not a gradient-norm bound"),
            "a positive number, or None to disable clipping",
        );
    }
    if let Some(steps) = t.max_steps_per_epoch {
        need(
            steps >= 1,
            "training.max_steps_per_epoch",
            "must be at least 1 (got 0)".into(),
            "an integer ≥ 1, or None for whole epochs",
        );
    }
    match &t.lr_policy {
        LrPolicy::Constant => {}
        LrPolicy::DecayAfter { factor, .. } | LrPolicy::Plateau { factor, .. } => need(
            factor.is_finite() && *factor > 0.0 && *factor <= 1.0,
            "training.lr_policy.factor",
            format!("{factor} would not decay the learning rate"),
            "a number in (0, 1]",
        ),
    }

    if let Some(p) = &e.pruning {
        check_matrices(
            &mut need,
            "pruning.matrices",
            &p.matrices,
            (m.layers, m.tied),
        );
        need(
            (0.0..1.0).contains(&p.rate),
            "pruning.rate",
            format!("{} is not a pruning rate", p.rate),
            "a fraction in [0, 1), e.g. 0.5 to prune half the weights",
        );
        if let PruneSchedule::Gradual {
            initial,
            every,
            ramp,
        } = p.schedule
        {
            need(
                (0.0..=p.rate).contains(&initial),
                "pruning.schedule.initial",
                format!("{initial} must lie between 0 and the final rate {}", p.rate),
                "a fraction in [0, rate]",
            );
            need(
                every >= 1,
                "pruning.schedule.every",
                "must be at least 1 (got 0)".into(),
                "an integer ≥ 1",
            );
            need(
                ramp > 0.0 && ramp <= 1.0,
                "pruning.schedule.ramp",
                format!("{ramp} is not a fraction of the retraining"),
                "a number in (0, 1]",
            );
        }
        check_retrain(&mut need, "pruning.retrain", &p.retrain);
    }
    if let Some(q) = &e.quantization {
        need(
            !q.groups.is_empty(),
            "quantization.groups",
            "no group: nothing would be quantized".into(),
            "one or more (matrices: …, bits: 1..=4, method: …)",
        );
        let mut seen: Vec<String> = Vec::new();
        for (i, g) in q.groups.iter().enumerate() {
            need(
                (1..=4).contains(&g.bits),
                "quantization.groups.bits",
                format!("group {}: {} bits", i + 1, g.bits),
                "an integer from 1 to 4",
            );
            if let QuantMethod::Alternating(cycles) = g.method {
                need(
                    cycles >= 1,
                    "quantization.groups.method",
                    format!("group {}: Alternating(0) does no cycle", i + 1),
                    "Alternating(T) with T ≥ 1",
                );
            }
            let names = (m.layers <= MAX_LAYERS)
                .then(|| g.matrices.resolve(m.layers, m.tied).ok())
                .flatten();
            if let Some(names) = names {
                for n in names {
                    need(
                        !seen.contains(&n),
                        "quantization.groups.matrices",
                        format!("group {}: {n} is already in an earlier group", i + 1),
                        "each matrix in at most one group",
                    );
                    seen.push(n);
                }
            }
            check_matrices(
                &mut need,
                "quantization.groups.matrices",
                &g.matrices,
                (m.layers, m.tied),
            );
        }
        for b in &q.baselines {
            if let QuantMethod::Alternating(cycles) = b {
                need(
                    *cycles >= 1,
                    "quantization.baselines",
                    "Alternating(0) does no cycle".into(),
                    "Alternating(T) with T ≥ 1",
                );
            }
        }
        need(
            q.loss_every >= 1,
            "quantization.loss_every",
            "must be at least 1 (got 0)".into(),
            "an integer ≥ 1",
        );
        check_retrain(&mut need, "quantization.retrain", &q.retrain);
    }

    need(
        e.eval.batch_size >= 1,
        "eval.batch_size",
        format!("must be at least 1 (got {})", e.eval.batch_size),
        "an integer ≥ 1",
    );
    out
}
