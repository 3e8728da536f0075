//! The seed's client: prints the latency and text of every `Message`; ends on `exit`.

use ipc_examples::Message;
use ipc_runtime::prelude::*;

fn main() -> Result<(), Error> {
    let subscriber = Message::subscriber()?;
    println!("waiting for messages on topic `{}`", <Message as Topic>::NAME);
    loop {
        let sample = subscriber.receive()?;
        let latency = ipc_runtime::timestamp() - sample.timestamp;
        let text = sample.text();
        if text == "exit" {
            println!("received exit message");
            break;
        }
        println!("latency: {latency} ns - {text}");
    }
    Ok(())
}
