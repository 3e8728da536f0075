//! The seed's broadcaster: every line read from stdin is published as a `Message`; `exit` (or
//! the end of input) ends both the broadcaster and its clients.
//!
//! Run `cargo run -p ipc-examples --bin client` in one terminal and
//! `cargo run -p ipc-examples --bin broadcaster` in another, then type.

use std::io::{BufRead, Write};

use ipc_examples::Message;
use ipc_runtime::prelude::*;

fn main() -> Result<(), Error> {
    ipc_runtime::init_heap(4096 * 4096)?;
    let publisher = Message::publisher()?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("Enter message: ");
        std::io::stdout().flush().ok();
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => "exit".to_owned(),
        };
        publisher.publish(Message::new(&line))?;
        if line == "exit" {
            println!();
            break;
        }
    }
    Ok(())
}
