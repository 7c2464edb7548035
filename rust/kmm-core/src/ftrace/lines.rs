//! Lines of a stream read in chunks of any size (a line may be cut between
//! two chunks): one splitter for every reader of kernel trace text (the
//! importer, `Importer`, and the real-trace replay, `replay_real`).
//! Memory: the one partial line carried over, at most [`MAX_LINE`] bytes.

use crate::error::{Error, Result};

/// The longest line a kernel trace holds; a longer one means the input is not one.
pub const MAX_LINE: usize = 1 << 16;

/// Splits chunks of text at `\n` (memchr) and hands each line, without its
/// newline, to a callback; no allocation per line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    carry: Vec<u8>,
    /// Complete lines handed out so far.
    lines: u64,
}

impl LineSplitter {
    /// Hand every complete line of `chunk` (the carried partial line first)
    /// to `line`, and keep a trailing partial line for the next chunk.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        mut line: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(nl) => {
                    let mut l = std::mem::take(&mut self.carry);
                    l.extend_from_slice(&chunk[..nl]);
                    self.lines += 1;
                    let r = line(&l);
                    l.clear();
                    self.carry = l; // keep the allocation
                    r?;
                    chunk = &chunk[nl + 1..];
                }
                None => {
                    self.carry.extend_from_slice(chunk);
                    return self.check_carry();
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.lines += 1;
            line(&chunk[start..nl])?;
            start = nl + 1;
        }
        self.carry.extend_from_slice(&chunk[start..]);
        self.check_carry()
    }

    /// End of input: the last line when it had no newline (None otherwise).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.carry.is_empty() {
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.carry))
    }

    fn check_carry(&self) -> Result<()> {
        if self.carry.len() > MAX_LINE {
            return Err(Error::Parse(format!(
                "line {} is longer than {MAX_LINE} bytes: not a kernel trace",
                self.lines + 1
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in text.chunks(chunk.max(1)) {
            s.feed(c, |l| {
                out.push(l.to_vec());
                Ok(())
            })
            .unwrap();
        }
        (out, s.finish())
    }

    #[test]
    fn any_chunking_gives_the_lines_of_split() {
        let text = b"a b\n\nccc\nlast without newline";
        let want: Vec<Vec<u8>> = vec![b"a b".to_vec(), vec![], b"ccc".to_vec()];
        for chunk in 1..text.len() + 2 {
            let (lines, last) = split(text, chunk);
            assert_eq!(lines, want, "chunk {chunk}");
            assert_eq!(last.as_deref(), Some(&b"last without newline"[..]));
        }
        assert_eq!(split(b"x\n", 1).1, None);
    }

    #[test]
    fn a_line_longer_than_max_is_an_error() {
        let mut s = LineSplitter::default();
        s.feed(b"ok\n", |_| Ok(())).unwrap();
        let e = s.feed(&vec![b'x'; MAX_LINE + 1], |_| Ok(())).unwrap_err();
        assert!(e.message().contains("line 2 is longer"), "{e}");
    }
}
