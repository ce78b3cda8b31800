fn main() -> std::process::ExitCode {
    kit::cli::main::<auth::Application>()
}
