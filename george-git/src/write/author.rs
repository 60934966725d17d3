//! [`GitAuthor`] and [`Committer`]: who the write tool's commits are by, on which
//! branch, and how far back a retried call is looked for.

use george_core::Result;
use git2::Signature;

use crate::error::GitResultExt;

/// The author (and committer) of the commits the write tool makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitAuthor {
    /// Name, e.g. `George`.
    pub name: String,
    /// E-mail address, e.g. `george@example.com`.
    pub email: String,
}

impl GitAuthor {
    /// An author.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        GitAuthor {
            name: name.into(),
            email: email.into(),
        }
    }

    /// A signature of this author, now.
    ///
    /// # Errors
    /// `InvalidInput` when the name or e-mail cannot be in a commit (e.g. `<`).
    pub(crate) fn signature(&self) -> Result<Signature<'static>> {
        Signature::now(&self.name, &self.email).git_ctx("making the commit signature")
    }
}

/// What a commit helper needs of the tool's settings: the author, the branch, and how
/// many commits back a retried call's key is looked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committer<'a> {
    pub(crate) author: &'a GitAuthor,
    pub(crate) branch: &'a str,
    pub(crate) replay_window: usize,
}
