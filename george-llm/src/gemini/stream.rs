//! Reading `streamGenerateContent?alt=sse`: every server-sent event's `data:` is a
//! partial `GenerateContentResponse`
//! (<https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>).
//! There is no end marker: the last chunk carries the candidate's `finishReason` (and
//! the final `usageMetadata`), so a stream that ends without one was cut short.

use futures::StreamExt;
use george_core::Result;

use super::NAME;
use super::response::{Assembly, malformed};
use super::wire::GenerateContentResponse;
use crate::sse;
use crate::transport::HttpResponse;

/// Feeds the chunks of `resp` (a `streamGenerateContent?alt=sse` response,
/// <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>)
/// to `assembly`, reading at most `limit` bytes of the stream.
///
/// # Errors
/// A broken connection (`Backend`, transient), a chunk that is not JSON or a stream
/// that ends before its final chunk (`MalformedResponse`), an error reported in the
/// stream (mapped by its code).
pub async fn read(resp: HttpResponse, assembly: &mut Assembly, limit: usize) -> Result<()> {
    let mut events = std::pin::pin!(sse::events(NAME, resp.body, limit));
    while let Some(event) = events.next().await {
        let event = event?;
        let data = event.data.trim();
        if data.is_empty() {
            continue;
        }
        let chunk: GenerateContentResponse =
            serde_json::from_str(data).map_err(|e| malformed(format!("stream chunk: {e}")))?;
        assembly.add(chunk)?;
    }
    if assembly.is_complete() {
        Ok(())
    } else {
        Err(sse::cut_short(NAME))
    }
}
