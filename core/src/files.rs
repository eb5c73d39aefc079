//! Reading the files a user, or a project the host restores, names: model files and MIDI
//! files. A path in a project is untrusted, so a read must neither block (a FIFO), nor run
//! forever (`/dev/zero`), nor take whatever memory a file's size asks for.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// The whole of `path`, if it is a regular file of at most `cap` bytes.
///
/// On unix the file is opened with `O_NONBLOCK`, so that opening a FIFO returns at once
/// (it is then refused: it is not a regular file); the flag does nothing to reads of a
/// regular file. The type and size are those of the
/// opened file, not of whatever the path named a moment before, and reading stops after
/// `cap + 1` bytes, so a file that grows meanwhile is refused too.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = open_nonblocking(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{size} bytes, more than the {cap} allowed"),
        )
    };
    if metadata.len() > cap {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("latent-live-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn reads_a_regular_file_up_to_the_cap() {
        let path = scratch("small");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_capped(&path, 10).unwrap(), b"0123456789");
        let err = read_capped(&path, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
    }

    #[test]
    fn an_over_cap_sparse_file_is_refused_without_reading_it() {
        let path = scratch("sparse");
        File::create(&path).unwrap().set_len(1 << 40).unwrap();
        let err = read_capped(&path, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let dir = std::env::temp_dir();
        assert_eq!(
            read_capped(&dir, 1 << 20).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        #[cfg(unix)]
        assert_eq!(
            read_capped(Path::new("/dev/zero"), 1 << 20)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once() {
        let path = scratch("fifo");
        let _ = std::fs::remove_file(&path);
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        // With no writer, a blocking open would wait forever.
        let started = Instant::now();
        let err = read_capped(&path, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
        std::fs::remove_file(&path).unwrap();
    }
}
