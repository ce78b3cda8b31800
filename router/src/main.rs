// The request path allocates many small JSON nodes; mimalloc measured faster than the system allocator.
#[global_allocator]
static GLOBAL: platform::allocator::Allocator = platform::allocator::Allocator;

fn main() -> std::process::ExitCode {
    platform::cli::main::<router::Application>()
}
