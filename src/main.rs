fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let status = iq_tui::cli::main()?;
    std::process::exit(status);
}
