//! The commit the binary is built from, for `info` (`BEONGAE_BUILD`), when
//! built inside a git checkout.

fn main() {
    let hash = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(h) = hash.filter(|h| !h.is_empty()) {
        println!("cargo:rustc-env=BEONGAE_BUILD={h}");
    }
    // Rebuilt when a commit moves HEAD.
    for f in [
        "../../.git/HEAD",
        "../../.git/refs/heads",
        "../../.git/packed-refs",
    ] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
}
