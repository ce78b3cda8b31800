fn main() -> std::process::ExitCode {
    kit::cli::main::<router::Application>()
}
