//! Prints the operations a fuzz input decodes to (debug aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: fuzz_ops FILE");
    let data = std::fs::read(path).expect("read");
    for op in roomd::fuzzing::ops::decode(&data) {
        println!("{op:?}");
    }
}
