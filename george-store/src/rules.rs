//! The approval rule of [`StateStore::commit`](george_core::store::StateStore::commit),
//! as the SQL stores apply it.

use std::collections::HashMap;

use george_core::store::{ApprovalOp, check_approval_write};

use crate::error::StoreError;

/// Checks the approval writes of one job write, `(id, op, new status)`, in order, each
/// against the state the previous one left ([`check_approval_write`]).
///
/// `stored(id, op)` gives the stored status of a request the write has not touched
/// yet (`op` is what its first write does to it): the SQL stores read it, or assume
/// what the statement will check.
///
/// # Errors
/// `Refused` with the rule's `Conflict` or `InvalidInput`; what `stored` returns.
pub(crate) fn check_approvals<'a>(
    writes: impl IntoIterator<Item = (&'a str, ApprovalOp, &'a str)>,
    mut stored: impl FnMut(&str, ApprovalOp) -> Result<Option<String>, StoreError>,
) -> Result<(), StoreError> {
    let mut seen: HashMap<&'a str, &'a str> = HashMap::new();
    for (id, op, status) in writes {
        let read;
        let now = match seen.get(id) {
            Some(s) => Some(*s),
            None => {
                read = stored(id, op)?;
                read.as_deref()
            }
        };
        check_approval_write(id, op, now, status).map_err(StoreError::Refused)?;
        seen.insert(id, status);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use george_core::ErrorKind;
    use george_core::store::ApprovalOp::{Insert, Update};

    fn kind(r: Result<(), StoreError>) -> Option<ErrorKind> {
        r.err().map(|e| george_core::Error::from(e).kind())
    }

    #[test]
    fn each_write_sees_the_previous_one() {
        let none = |_: &str, _| Ok(None);
        let open = |_: &str, _| Ok(Some("open".to_string()));
        assert_eq!(
            kind(check_approvals(
                [("a", Insert, "open"), ("a", Update, "approved")],
                none
            )),
            None
        );
        assert_eq!(
            kind(check_approvals(
                [("a", Update, "approved"), ("a", Update, "open")],
                open
            )),
            Some(ErrorKind::Conflict)
        );
        assert_eq!(
            kind(check_approvals([("a", Insert, "approved")], none)),
            Some(ErrorKind::InvalidInput)
        );
        assert_eq!(
            kind(check_approvals([("a", Insert, "open")], open)),
            Some(ErrorKind::Conflict)
        );
        // `stored` is asked once per id, with the op of its first write.
        let mut asked = Vec::new();
        let r = check_approvals(
            [
                ("a", Update, "open"),
                ("b", Insert, "open"),
                ("a", Update, "cancelled"),
            ],
            |id, op| {
                asked.push((id.to_string(), op));
                Ok((op == Update).then(|| "open".to_string()))
            },
        );
        assert!(r.is_ok());
        assert_eq!(
            asked,
            [("a".to_string(), Update), ("b".to_string(), Insert)]
        );
    }
}
