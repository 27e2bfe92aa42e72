//! The S3 operations nasgate tells apart: `operation` in `s3::mod` routes a request to one,
//! `dispatch` calls its handler, and logs and metrics label it by `Operation::name`.

macro_rules! operations {
    ($($(#[$doc:meta])* $op:ident,)*) => {
        /// One S3 operation, as routing picks it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $op,)*
        }

        impl Operation {
            /// The name S3 gives the operation (the label in logs and metrics).
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                }
            }
        }
    };
}

operations! {
    /// GET on the service.
    ListBuckets,
    /// PUT on a bucket.
    CreateBucket,
    /// HEAD on a bucket.
    HeadBucket,
    /// DELETE on a bucket.
    DeleteBucket,
    /// GET ?location.
    GetBucketLocation,
    /// GET ?versioning.
    GetBucketVersioning,
    /// GET of a bucket configuration nasgate does not keep (policy, CORS, ...).
    GetBucketConfig,
    /// GET ?acl on a bucket.
    GetBucketAcl,
    /// PUT ?acl on a bucket.
    PutBucketAcl,
    /// GET on a bucket.
    ListObjects,
    /// GET ?list-type=2 on a bucket.
    ListObjectsV2,
    /// POST ?delete on a bucket.
    DeleteObjects,
    /// GET ?uploads on a bucket.
    ListMultipartUploads,
    /// PUT on a key.
    PutObject,
    /// PUT on a key with x-amz-copy-source.
    CopyObject,
    /// GET on a key.
    GetObject,
    /// HEAD on a key.
    HeadObject,
    /// DELETE on a key.
    DeleteObject,
    /// GET ?tagging on a key.
    GetObjectTagging,
    /// PUT ?tagging on a key.
    PutObjectTagging,
    /// DELETE ?tagging on a key.
    DeleteObjectTagging,
    /// GET ?acl on a key.
    GetObjectAcl,
    /// PUT ?acl on a key.
    PutObjectAcl,
    /// POST ?uploads on a key.
    CreateMultipartUpload,
    /// PUT ?uploadId on a key.
    UploadPart,
    /// PUT ?uploadId on a key with x-amz-copy-source.
    UploadPartCopy,
    /// POST ?uploadId on a key.
    CompleteMultipartUpload,
    /// DELETE ?uploadId on a key.
    AbortMultipartUpload,
    /// POST of a browser form on a bucket (credentials in the form).
    PostObject,
    /// GET ?uploadId on a key.
    ListParts,
    /// GET ?policy on a bucket.
    GetBucketPolicy,
    /// PUT ?policy on a bucket.
    PutBucketPolicy,
    /// DELETE ?policy on a bucket.
    DeleteBucketPolicy,
    /// GET ?policyStatus on a bucket.
    GetBucketPolicyStatus,
    /// Anything else: answered 501 NotImplemented.
    Unsupported,
    /// A request whose authentication failed (never routed).
    Unauthenticated,
}
