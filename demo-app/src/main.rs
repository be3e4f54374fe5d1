//! `cart`: the offline-first collaborative shopping cart (work in progress).

fn main() {
    println!("gossamer cart: not implemented yet");
}
