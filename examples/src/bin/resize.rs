//! A resize service over request/response: the client sends a grayscale image in a `ShmVec<u8>`
//! and a factor, the server answers with the image shrunk by that factor (each output pixel the
//! mean of a factor × factor block), built in place in its own shared memory. Neither image is
//! copied between the processes.
//!
//! ```sh
//! cargo run -p ipc-examples --bin resize            # client; spawns itself as the server
//! cargo run -p ipc-examples --bin resize -- both    # client and server threads in one process
//! cargo run -p ipc-examples --bin resize -- server  # just the server (until stdin closes)
//! cargo run -p ipc-examples --bin resize -- client  # just the client
//! ```

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;

const SERVICE: &str = "examples/resize";

/// What the client asks for.
#[derive(ShmMessage)]
#[repr(C)]
struct Resize {
    width: u32,
    height: u32,
    /// Shrink by this much in both directions (1 or more).
    factor: u32,
    pixels: ShmVec<u8>,
}

/// What the server answers.
#[derive(ShmMessage, Default)]
#[repr(C)]
struct Image {
    width: u32,
    height: u32,
    pixels: ShmVec<u8>,
}

fn serve(stop: &AtomicBool) -> Result<(), Error> {
    let server = Server::<Resize, Image>::new(SERVICE)?;
    println!("[server] serving `{SERVICE}`");
    let mut served = 0;
    while !stop.load(Ordering::Acquire) {
        let Some(request) = server.receive_timeout(Duration::from_millis(100))? else { continue };
        let (w, h, f) = (request.width as usize, request.height as usize, request.factor.max(1));
        if request.pixels.len() != w * h {
            eprintln!("[server] request {} has a bad size; dropped", request.request_id());
            continue; // Dropping the request ends its (empty) stream.
        }
        let f = f as usize;
        let (out_w, out_h) = (w / f, h / f);
        let mut response = request.loan()?;
        response.width = out_w as u32;
        response.height = out_h as u32;
        response.pixels.reserve(out_w * out_h);
        for y in 0..out_h {
            for x in 0..out_w {
                let mut sum = 0u32;
                for dy in 0..f {
                    let row = &request.pixels[(y * f + dy) * w + x * f..][..f];
                    sum += row.iter().map(|&p| u32::from(p)).sum::<u32>();
                }
                response.pixels.push((sum / (f * f) as u32) as u8);
            }
        }
        response.respond()?;
        served += 1;
    }
    println!("[server] served {served} requests; bye");
    Ok(())
}

fn client() -> Result<(), Error> {
    let client = Client::<Resize, Image>::new(SERVICE)?;
    let start = Instant::now();
    while client.servers() == 0 {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(Error::NoServer {
                service: SERVICE.into(),
                context: "after 10 s of waiting".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (width, height) = (640u32, 480u32);
    // A diagonal gradient.
    let pixels: ShmVec<u8> =
        (0..height).flat_map(|y| (0..width).map(move |x| ((x + y) % 256) as u8)).collect();
    println!(
        "[client] image {width}x{height} ({} bytes in this process's shared heap)",
        pixels.len()
    );
    for factor in [2, 4, 8] {
        let request = Resize { width, height, factor, pixels: pixels.clone() };
        let t = Instant::now();
        let pending = client.request(request)?;
        let image = pending.receive_timeout(Duration::from_secs(10))?.ok_or(Error::NoServer {
            service: SERVICE.into(),
            context: "answering within 10 s".into(),
        })?;
        let mean = image.pixels.iter().map(|&p| u64::from(p)).sum::<u64>()
            / image.pixels.len().max(1) as u64;
        println!(
            "[client] factor {factor}: got {}x{} ({} bytes, read in the server's memory), mean {mean}, in {:.2?}",
            image.width,
            image.height,
            image.pixels.len(),
            t.elapsed()
        );
        assert_eq!((image.width, image.height), (width / factor, height / factor));
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let role = std::env::args().nth(1).unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    match role.as_str() {
        "server" => {
            // Stop when stdin closes (the spawning client is done).
            let flag = Arc::clone(&stop);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                flag.store(true, Ordering::Release);
            });
            serve(&stop)
        }
        "client" => client(),
        "both" => {
            let flag = Arc::clone(&stop);
            let server = std::thread::spawn(move || serve(&flag));
            let result = client();
            stop.store(true, Ordering::Release);
            server.join().expect("server thread")?;
            result
        }
        "" => {
            let exe = std::env::current_exe()
                .map_err(|e| Error::Io { context: "finding this program".into(), source: e })?;
            let mut child = Command::new(exe)
                .arg("server")
                .stdin(Stdio::piped())
                .spawn()
                .map_err(|e| Error::Io { context: "starting the server".into(), source: e })?;
            println!("[client] started the server as process {}", child.id());
            let result = client();
            drop(child.stdin.take());
            let _ = child.wait();
            result
        }
        other => {
            eprintln!("unknown role `{other}`: use server, client, both or nothing");
            std::process::exit(2);
        }
    }
}
