//! Parses a file repeatedly (for profiling): `cargo run --release --example parse_loop FILE N`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("read");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let opts =
        molstream_engine::io::LoadOptions { validate_with_pdbtbx: false, infer_bonds: false, ..Default::default() };
    let t = std::time::Instant::now();
    for _ in 0..n {
        let l = molstream_engine::io::load_bytes(&bytes, &args[1], None, &opts).expect("load");
        std::hint::black_box(l);
    }
    println!("{:.2} ms per parse", t.elapsed().as_secs_f64() * 1e3 / n as f64);
}
