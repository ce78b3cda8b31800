// Resolvers allocate many small values; mimalloc measured faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kit::cli::main::<auth::Application>()
}
