fn main() -> std::process::ExitCode {
    kit::cli::main::<tasks::Application>()
}
