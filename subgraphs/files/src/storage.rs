//! Blob storage through `object_store`: a local directory by default, any
//! S3-compatible bucket by configuration. Keys are random; filenames never
//! reach storage.

use std::ops::Range;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::config::StorageSettings;

/// Bytes read per blocking read when streaming a local file.
const LOCAL_READ_CHUNK: usize = 256 * 1024;

/// A handle on the blob store. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Part size of streamed writes (S3 requires at least 5 MiB but the last).
    part_size: usize,
    /// The directory of a local store (for its staging files).
    local_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.store)
    }
}

impl Storage {
    pub fn from_settings(settings: &StorageSettings) -> anyhow::Result<Self> {
        match settings {
            StorageSettings::Local { dir } => Self::local(dir),
            StorageSettings::S3 { url, options } => {
                let mut builder =
                    AmazonS3Builder::new().with_url(url).with_http_connector(crate::s3_http::HyperConnector);
                for (name, value) in options {
                    if let Ok(key) = format!("aws_{}", name.to_ascii_lowercase()).parse::<AmazonS3ConfigKey>() {
                        builder = builder.with_config(key, value.expose());
                    }
                }
                let store = builder.build().context("configuring the S3 store")?;
                let prefix = url.trim_start_matches("s3://").split_once('/').map(|(_, p)| p.trim_matches('/'));
                let store: Arc<dyn ObjectStore> = match prefix {
                    Some(prefix) if !prefix.is_empty() => Arc::new(PrefixStore::new(store, prefix)),
                    _ => Arc::new(store),
                };
                Ok(Self { store, part_size: 8 << 20, local_dir: None })
            }
        }
    }

    /// A store in `dir` (created if missing).
    pub fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the storage directory {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the storage directory {}", dir.display()))?;
        Ok(Self { store: Arc::new(store), part_size: 2 << 20, local_dir: Some(dir.to_path_buf()) })
    }

    /// A fresh random key.
    pub fn new_key() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Starts a streamed write of `key`; the blob appears only when finished.
    pub async fn writer(&self, key: &str) -> anyhow::Result<BlobWriter> {
        let upload = self.store.put_multipart(&Path::from(key)).await.context("starting a blob upload")?;
        Ok(BlobWriter { inner: Some(WriteMultipart::new_with_chunk_size(upload, self.part_size)) })
    }

    /// Streams `range` of the blob (the whole blob when `None`).
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self.store.get_opts(&Path::from(key), options).await.context("opening a blob")?;
        let stream = match result.payload {
            // object_store reads local files 8 KiB per blocking task; bigger reads are much faster.
            GetResultPayload::File(file, _) => read_file(file, result.range),
            GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
        };
        Ok(stream)
    }

    /// Deletes a blob; one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("deleting a blob")),
        }
    }

    /// Whether the blob exists.
    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("looking a blob up")),
        }
    }

    /// Every blob key with its last modification time.
    pub fn list(&self) -> BoxStream<'static, anyhow::Result<(String, DateTime<Utc>)>> {
        self.store
            .list(None)
            .map(|meta| {
                let meta = meta.context("listing blobs")?;
                Ok((meta.location.to_string(), meta.last_modified))
            })
            .boxed()
    }
}

impl Storage {
    /// Removes a local store's staging files (`<key>#<n>`, writes a crash
    /// interrupted) last written before `cutoff`; listing never shows them. An S3
    /// bucket needs a lifecycle rule aborting incomplete multipart uploads instead.
    pub async fn sweep_staging(&self, cutoff: DateTime<Utc>) -> anyhow::Result<usize> {
        let Some(dir) = self.local_dir.clone() else { return Ok(0) };
        let cutoff = std::time::SystemTime::from(cutoff);
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir)?.flatten() {
                let name = entry.file_name();
                let staging = name
                    .to_str()
                    .and_then(|n| n.split_once('#'))
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
                if staging && old && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
            Ok::<usize, std::io::Error>(removed)
        })
        .await
        .context("sweeping staging files")?
        .context("reading the storage directory")
    }
}

/// Reads `range` of a local file in large chunks on blocking threads.
fn read_file(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, std::io::Result<Bytes>> {
    use std::io::{Read, Seek, SeekFrom};
    let state = (Some(file), range.start, range.end);
    futures::stream::try_unfold(state, |(file, position, end)| async move {
        let Some(mut file) = file else { return Ok(None) };
        if position >= end {
            return Ok(None);
        }
        let want = (end - position).min(LOCAL_READ_CHUNK as u64) as usize;
        let (file, chunk) = tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(position))?;
            let mut buffer = Vec::with_capacity(want);
            (&mut file).take(want as u64).read_to_end(&mut buffer)?;
            Ok::<_, std::io::Error>((file, buffer))
        })
        .await
        .map_err(std::io::Error::other)??;
        if chunk.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "blob shorter than expected"));
        }
        let next = position + chunk.len() as u64;
        Ok(Some((Bytes::from(chunk), (Some(file), next, end))))
    })
    .boxed()
}

/// A blob being written in parts, at most two parts in memory at a time.
/// Dropped unfinished (a cancelled request), the write is abandoned in the background.
pub struct BlobWriter {
    inner: Option<WriteMultipart>,
}

impl BlobWriter {
    fn inner(&mut self) -> &mut WriteMultipart {
        self.inner.as_mut().expect("present until finished or aborted")
    }

    pub async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.inner().wait_for_capacity(1).await.context("writing a blob")?;
        self.inner().put(bytes);
        Ok(())
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        let inner = self.inner.take().expect("present until finished or aborted");
        inner.finish().await.context("finishing a blob")?;
        Ok(())
    }

    /// Abandons the write: nothing is left in storage.
    pub async fn abort(mut self) {
        if let Some(inner) = self.inner.take()
            && let Err(e) = inner.abort().await
        {
            tracing::warn!(error = %e, "could not abort a blob upload");
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = inner.abort().await {
                    tracing::warn!(error = %e, "could not abort an abandoned blob upload");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};

    use super::*;
    use kit::config::Secret;

    /// A fake S3 endpoint: `HEAD /bucket/prefix/present` exists, everything else is 404.
    async fn fake_s3() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(|method: Method, uri: Uri| async move {
            let mut headers = HeaderMap::new();
            if method == Method::HEAD && uri.path() == "/bucket/prefix/present" {
                headers.insert("content-length", "5".parse().unwrap());
                headers.insert("last-modified", "Sat, 28 Nov 2026 10:00:00 GMT".parse().unwrap());
                headers.insert("etag", "\"abc\"".parse().unwrap());
                return (StatusCode::OK, headers);
            }
            (StatusCode::NOT_FOUND, headers)
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://127.0.0.1:{port}"), server)
    }

    #[tokio::test]
    async fn s3_goes_through_our_connector_with_the_prefix() {
        let (endpoint, server) = fake_s3().await;
        let options = [
            ("REGION", "us-east-1"),
            ("ENDPOINT", endpoint.as_str()),
            ("ALLOW_HTTP", "true"),
            ("ACCESS_KEY_ID", "test"),
            ("SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Secret::new(v)))
        .collect();
        let settings = StorageSettings::S3 { url: "s3://bucket/prefix".into(), options };
        let storage = Storage::from_settings(&settings).unwrap();

        assert!(storage.exists("present").await.unwrap());
        assert!(!storage.exists("absent").await.unwrap());
        server.abort();
    }
}
