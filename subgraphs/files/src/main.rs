fn main() -> std::process::ExitCode {
    kit::cli::main::<files::Application>()
}
