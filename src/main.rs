fn main() -> std::process::ExitCode {
    mimamori::cli::main()
}
