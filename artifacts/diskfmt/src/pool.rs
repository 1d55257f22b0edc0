//! Where the parallel parts of the writers run: rayon's global pool (one thread per CPU), or a
//! private pool of a given size. Writers only parallelise per-chunk work whose results are
//! collected in order, so their output never depends on the choice.

/// rayon's global pool, or one of a given size.
#[derive(Debug)]
pub enum Pool {
    Global,
    Own(rayon::ThreadPool),
}

impl Pool {
    /// `None`: the global pool; `Some(n)`: a new pool of `n` threads.
    pub fn new(threads: Option<usize>) -> Result<Self, rayon::ThreadPoolBuildError> {
        match threads {
            None => Ok(Pool::Global),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map(Pool::Own),
        }
    }

    /// Run `f` (which uses rayon's parallel iterators) on this pool.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match self {
            Pool::Global => f(),
            Pool::Own(pool) => pool.install(f),
        }
    }
}
