"""The embedded fake OMS upstream, for the demo, the tests and the benchmarks."""
