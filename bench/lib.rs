//! Nothing: this package holds only the side-by-side benchmarks in `benches/`.
