// Resolvers allocate many small values; mimalloc measured faster than the system allocator.
#[global_allocator]
static GLOBAL: kit::allocator::Allocator = kit::allocator::Allocator;

fn main() -> std::process::ExitCode {
    kit::cli::main::<tasks::Application>()
}
