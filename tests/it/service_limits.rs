//! The service binary under attack (issue #8): it survives running out of file descriptors
//! and stops within its shutdown grace whatever photo decoding is under way.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{keys_example, repo, tempdir};

/// `vaxpass serve` on a free port with a fresh database, under `ulimit -n files`.
fn serve(dir: &std::path::Path, files: u32) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = format!(
        "ulimit -n {files} && exec \"$0\" serve --listen 127.0.0.1:{port} --db sqlite://{}/v.db",
        dir.display()
    );
    let child = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_vaxpass")])
        .current_dir(repo())
        .env("VAXPASS_KEYS", keys_example())
        .env("VAXPASS_SECRET", dir.join("secret"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while healthz(port).is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "the service did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// The status line of `GET /healthz`, if the service answers within 10 s.
fn healthz(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_owned)
}

/// Waits for `child` to exit, for at most `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_service_survives_running_out_of_file_descriptors() {
    let dir = tempdir();
    let (mut child, port) = serve(dir.path(), 64);
    // More connections than descriptors: accept fails with EMFILE for the extra ones.
    let held: Vec<TcpStream> = (0..120).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    assert!(held.len() > 64, "{} connections", held.len());
    // The kernel completes the handshakes; the service runs out when it accepts them, which
    // it does at its own pace: the connections stay open until its log says so.
    let log = dir.path().join("log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("accept failed") {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(start.elapsed() < Duration::from_secs(20), "the descriptors did not run out: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
    assert_eq!(healthz(port).as_deref(), Some("HTTP/1.1 200 OK"));
    assert!(child.try_wait().unwrap().is_none(), "the service died");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(exit_within(&mut child, Duration::from_secs(15)).is_some());
}

/// A PNG that is only QR finder patterns: 20 × 20 of them, 800 px square.
fn finder_lattice() -> Vec<u8> {
    let (side, module, per_side) = (800u32, 4u32, 20u32);
    let mut img = image::GrayImage::from_pixel(side, side, image::Luma([255]));
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (mx, my) = ((x % (side / per_side)) / module, (y % (side / per_side)) / module);
        let (mx, my) = (mx.wrapping_sub(1), my.wrapping_sub(1));
        let ring = mx < 7 && my < 7 && (mx == 0 || my == 0 || mx == 6 || my == 6);
        let centre = (2..=4).contains(&mx) && (2..=4).contains(&my);
        if ring || centre {
            *px = image::Luma([0]);
        }
    }
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[test]
fn sigterm_stops_the_service_within_its_grace_while_photos_are_decoded() {
    // Issue #8 item 2: with lattice photos being decoded, SIGTERM took 20 s (measured).
    let dir = tempdir();
    let (mut child, port) = serve(dir.path(), 1024);
    let png = finder_lattice();
    let mut body = b"--XB\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n".to_vec();
    body.extend_from_slice(&png);
    body.extend_from_slice(b"\r\n--XB--\r\n");
    let mut request = format!(
        "POST /api/v1/verify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=XB\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    // One answered: the lattice is refused as such.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&request).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    // Six in flight, then SIGTERM.
    let clients: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&request).unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = exit_within(&mut child, Duration::from_secs(15));
    eprintln!("exited {:?} after SIGTERM", start.elapsed());
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(11), "{:?}", start.elapsed());
    drop(clients);
}
