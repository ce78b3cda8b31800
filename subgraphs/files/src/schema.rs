//! The files subgraph's GraphQL schema (Apollo Federation v2).
//!
//! Only the viewer's own files are ever visible: another user's file is
//! NOT_FOUND (or a null entity), another user's `User.files` is empty.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, EmptySubscription, ID, Object, Request, Result, SDLExportOptions, Schema, SimpleObject};
use chrono::{DateTime, Utc};
use kit::config::QueryLimits;
use kit::identity::require_viewer;
use kit::{ApiError, Viewer};
use uuid::Uuid;

use crate::naming::clean_filename;
use crate::repository::{Cursor, FileRow, InsertError, NewFile, Page, Repository};
use crate::signing::UrlSigner;
use crate::upload::{self, Received, SharedUploads, StoredBlob, Upload};

pub type FilesSchema = Schema<Query, Mutation, EmptySubscription>;

const MAX_PAGE: i32 = 100;
const DEFAULT_PAGE: i32 = 20;
/// Entity requests arriving within this window share one query.
const BATCH_WINDOW: Duration = Duration::from_micros(500);

/// A stored file. Only its owner ever sees it.
pub struct File(FileRow);

#[Object]
impl File {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The name given at upload or rename (NFC, no path parts); metadata only.
    async fn filename(&self) -> &str {
        &self.0.filename
    }

    /// Decided from the file's first bytes, not from what the client said.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Size in bytes.
    async fn size(&self) -> i32 {
        i32::try_from(self.0.size).unwrap_or(i32::MAX)
    }

    /// SHA-256 of the content, lower-case hex (also the download's ETag).
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn owner(&self) -> User {
        User { id: self.0.owner_id }
    }

    /// A short-lived signed URL of the content (`GET`, no bearer token needed).
    async fn download_url(&self, ctx: &Context<'_>) -> String {
        ctx.data_unchecked::<UrlSigner>().url(self.0.id, self.0.owner_id, Utc::now().timestamp())
    }
}

/// A user (owned by the auth subgraph), with their files.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The user's files, newest first. Empty unless the user is the viewer.
    /// Null, with an error on this path, when it cannot be answered (a bad
    /// argument, or the files service unavailable): the rest of the user still
    /// comes back.
    async fn files(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<FileConnection>> {
        let request = PageRequest::parse(first, after.as_deref())?;
        if ctx.data_opt::<Viewer>().map(|v| v.user_id) != Some(self.id) {
            return Ok(Some(FileConnection::empty()));
        }
        Ok(Some(FileConnection::load(ctx, self.id, request).await?))
    }
}

#[derive(SimpleObject)]
pub struct FileEdge {
    cursor: String,
    node: File,
}

/// Relay page information.
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

pub struct FileConnection {
    edges: Vec<FileEdge>,
    page_info: PageInfo,
    /// `None` for a connection that is empty by rule (another user's files).
    owner: Option<Uuid>,
}

#[Object]
impl FileConnection {
    async fn edges(&self) -> &[FileEdge] {
        &self.edges
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Files over all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        match self.owner {
            Some(owner) => Ok(repository(ctx).count(owner).await.map_err(ApiError::from)?),
            None => Ok(0),
        }
    }
}

impl FileConnection {
    fn empty() -> Self {
        Self { edges: Vec::new(), page_info: PageInfo { has_next_page: false, end_cursor: None }, owner: None }
    }

    async fn load(ctx: &Context<'_>, owner: Uuid, request: PageRequest) -> Result<Self, ApiError> {
        let Page { files, has_next_page } = repository(ctx).page(owner, request.first, request.after).await?;
        let edges: Vec<FileEdge> =
            files.into_iter().map(|f| FileEdge { cursor: Cursor::of(&f).encode(), node: File(f) }).collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Ok(Self { edges, page_info: PageInfo { has_next_page, end_cursor }, owner: Some(owner) })
    }
}

struct PageRequest {
    first: usize,
    after: Option<Cursor>,
}

impl PageRequest {
    fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(ApiError::invalid("first", format!("first must be from 0 to {MAX_PAGE}")));
        }
        let after = match after {
            None => None,
            Some(raw) => {
                Some(Cursor::decode(raw).ok_or_else(|| ApiError::invalid("after", "not a cursor of this list"))?)
            }
        };
        Ok(Self { first: first as usize, after })
    }
}

fn repository<'a>(ctx: &Context<'a>) -> &'a Repository {
    ctx.data_unchecked::<Repository>()
}

fn parse_id(field: &str, id: &ID) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::invalid(field, "not a file id"))
}

pub struct Query;

#[Object]
impl Query {
    /// One of the viewer's files; NOT_FOUND for any other id.
    async fn file(&self, ctx: &Context<'_>, id: ID) -> Result<Option<File>> {
        let viewer = require_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        let mut rows = repository(ctx).owned(viewer.user_id, &[id]).await.map_err(ApiError::from)?;
        let row = rows.pop().ok_or_else(|| ApiError::not_found("File"))?;
        Ok(Some(File(row)))
    }

    /// The viewer's files, newest first.
    async fn files(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<FileConnection> {
        let viewer = require_viewer(ctx)?;
        let request = PageRequest::parse(first, after.as_deref())?;
        Ok(FileConnection::load(ctx, viewer.user_id, request).await?)
    }

    /// Federation: any user id resolves, but only the viewer's `files` are non-empty.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(&id).ok().map(|id| User { id })
    }

    /// Federation: the viewer's files resolve, others are null. Batched: N
    /// representations cost one query.
    #[graphql(entity)]
    async fn find_file_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<File>> {
        let (Some(loader), Ok(id)) = (ctx.data_opt::<DataLoader<FileLoader>>(), Uuid::parse_str(&id)) else {
            return Ok(None);
        };
        Ok(loader.load_one(id).await?.map(File))
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Stores one file (a multipart request). Its type is sniffed from its content.
    async fn upload_file(&self, ctx: &Context<'_>, file: Upload) -> Result<File> {
        let viewer = require_viewer(ctx)?;
        let mut rows = store(ctx, viewer.user_id, "file", vec![file]).await?;
        Ok(File(rows.pop().expect("one file in, one row out")))
    }

    /// Stores several files, all or none.
    async fn upload_files(&self, ctx: &Context<'_>, files: Vec<Upload>) -> Result<Vec<File>> {
        let viewer = require_viewer(ctx)?;
        if files.is_empty() {
            return Err(ApiError::invalid("files", "at least one file").into());
        }
        Ok(store(ctx, viewer.user_id, "files", files).await?.into_iter().map(File).collect())
    }

    async fn rename_file(&self, ctx: &Context<'_>, id: ID, filename: String) -> Result<File> {
        let viewer = require_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        let filename = clean_filename(&filename).map_err(|reason| ApiError::invalid("filename", reason))?;
        let row = repository(ctx).rename(viewer.user_id, id, &filename).await.map_err(ApiError::from)?;
        Ok(File(row.ok_or_else(|| ApiError::not_found("File"))?))
    }

    /// Deletes the file and its content; NOT_FOUND for another user's file.
    async fn delete_file(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let viewer = require_viewer(ctx)?;
        let id = parse_id("id", &id)?;
        if !repository(ctx).delete(viewer.user_id, id).await.map_err(ApiError::from)? {
            return Err(ApiError::not_found("File").into());
        }
        Ok(true)
    }
}

/// Claims the request's received files and records them in one transaction.
/// Any refusal refuses them all; blobs without a committed row are deleted.
async fn store(ctx: &Context<'_>, owner: Uuid, field: &str, files: Vec<Upload>) -> Result<Vec<FileRow>, ApiError> {
    let uploads = ctx.data_opt::<SharedUploads>();
    let mut blobs: Vec<StoredBlob> = Vec::with_capacity(files.len());
    let mut refusal = None;
    for Upload(index) in files {
        match uploads.and_then(|u| u.take(index)) {
            Some(Received::Stored(blob)) => blobs.push(blob),
            Some(Received::Refused(message)) => refusal = refusal.or(Some(message)),
            None => refusal = refusal.or(Some("each file must be a distinct part of a multipart request".into())),
        }
    }
    let keys: Vec<String> = blobs.iter().map(|b| b.key.clone()).collect();
    let repository = repository(ctx);
    if let Some(message) = refusal {
        upload::discard(repository.storage(), &keys).await;
        return Err(ApiError::invalid(field, message));
    }
    let new: Vec<NewFile> = blobs
        .into_iter()
        .map(|b| NewFile {
            filename: b.filename,
            content_type: b.content_type,
            size: b.size,
            sha256: b.sha256,
            storage_key: b.key,
        })
        .collect();
    let refused = match repository.insert(owner, &new).await {
        Ok(rows) => return Ok(rows),
        Err(InsertError::OverQuota { quota_bytes }) => ApiError::PayloadTooLarge(upload::over_quota(quota_bytes)),
        // The token outlived its account: the caller no longer exists.
        Err(InsertError::OwnerDeleted) => ApiError::Unauthenticated("This account no longer exists".into()),
        Err(InsertError::Failed(e)) => ApiError::internal(e),
    };
    upload::discard(repository.storage(), &keys).await;
    Err(refused)
}

/// Loads the viewer's files by id; one query per batch.
pub struct FileLoader {
    repository: Repository,
    viewer: Uuid,
}

impl Loader<Uuid> for FileLoader {
    type Value = FileRow;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, FileRow>, Self::Error> {
        let rows = self.repository.owned(self.viewer, ids).await.map_err(ApiError::from)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// Adds what a viewer's request needs besides the viewer (kit adds it): the viewer's loader.
pub fn for_viewer(request: Request, viewer: &Viewer, repository: &Repository) -> Request {
    let loader = FileLoader { repository: repository.clone(), viewer: viewer.user_id };
    request.data(DataLoader::new(loader, tokio::spawn).delay(BATCH_WINDOW))
}

/// The schema, with its shared data when serving, every request held to `limits`.
pub fn build(data: Option<(Repository, UrlSigner)>, limits: QueryLimits) -> FilesSchema {
    let mut builder = kit::graphql::limited(
        crate::SERVICE,
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    );
    if let Some((repository, signer)) = data {
        builder = builder.data(repository).data(signer);
    }
    builder.finish()
}

/// The federation SDL, as `files print-schema` prints and `schema/files.graphql` holds.
pub fn sdl() -> String {
    build(None, QueryLimits::default()).sdl_with_options(SDLExportOptions::new().federation())
}
