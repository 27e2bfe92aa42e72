//! The policy action each S3 operation needs.

use crate::s3::Operation;

/// The action `op` needs (None: an operation nasgate does not serve, refused to all but root).
/// `has` tells which query parameters the request carries (for the bucket configurations).
pub fn action(op: Operation, has: impl Fn(&str) -> bool) -> Option<&'static str> {
    use Operation::*;
    Some(match op {
        ListBuckets => "s3:ListAllMyBuckets",
        CreateBucket => "s3:CreateBucket",
        HeadBucket | ListObjects | ListObjectsV2 => "s3:ListBucket",
        DeleteBucket => "s3:DeleteBucket",
        GetBucketLocation => "s3:GetBucketLocation",
        GetBucketVersioning => "s3:GetBucketVersioning",
        GetBucketConfig => {
            const BY_PARAM: [(&str, &str); 8] = [
                ("cors", "s3:GetBucketCORS"),
                ("lifecycle", "s3:GetLifecycleConfiguration"),
                ("tagging", "s3:GetBucketTagging"),
                ("encryption", "s3:GetEncryptionConfiguration"),
                ("object-lock", "s3:GetBucketObjectLockConfiguration"),
                ("website", "s3:GetBucketWebsite"),
                ("notification", "s3:GetBucketNotification"),
                ("replication", "s3:GetReplicationConfiguration"),
            ];
            // The rest (logging, accelerate, ...) are read like the location: harmless facts.
            BY_PARAM
                .iter()
                .find(|(p, _)| has(p))
                .map_or("s3:GetBucketLocation", |(_, a)| a)
        }
        GetBucketAcl => "s3:GetBucketAcl",
        PutBucketAcl => "s3:PutBucketAcl",
        GetObjectAcl => "s3:GetObjectAcl",
        PutObjectAcl => "s3:PutObjectAcl",
        DeleteObjects | DeleteObject => "s3:DeleteObject",
        ListMultipartUploads => "s3:ListBucketMultipartUploads",
        PutObject
        | CopyObject
        | CreateMultipartUpload
        | UploadPart
        | UploadPartCopy
        | CompleteMultipartUpload
        | PostObject => "s3:PutObject",
        GetObject | HeadObject => "s3:GetObject",
        GetObjectTagging => "s3:GetObjectTagging",
        PutObjectTagging => "s3:PutObjectTagging",
        DeleteObjectTagging => "s3:DeleteObjectTagging",
        AbortMultipartUpload => "s3:AbortMultipartUpload",
        ListParts => "s3:ListMultipartUploadParts",
        GetBucketPolicy => "s3:GetBucketPolicy",
        PutBucketPolicy => "s3:PutBucketPolicy",
        DeleteBucketPolicy => "s3:DeleteBucketPolicy",
        GetBucketPolicyStatus => "s3:GetBucketPolicyStatus",
        Unsupported | Unauthenticated => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_action_is_one_policies_may_name() {
        use Operation::*;
        for op in [
            ListBuckets,
            CreateBucket,
            HeadBucket,
            DeleteBucket,
            GetBucketLocation,
            GetBucketVersioning,
            GetBucketConfig,
            GetBucketAcl,
            PutBucketAcl,
            ListObjects,
            ListObjectsV2,
            DeleteObjects,
            ListMultipartUploads,
            PutObject,
            CopyObject,
            GetObject,
            HeadObject,
            DeleteObject,
            GetObjectTagging,
            PutObjectTagging,
            DeleteObjectTagging,
            GetObjectAcl,
            PutObjectAcl,
            CreateMultipartUpload,
            UploadPart,
            UploadPartCopy,
            CompleteMultipartUpload,
            AbortMultipartUpload,
            PostObject,
            ListParts,
            GetBucketPolicy,
            PutBucketPolicy,
            DeleteBucketPolicy,
            GetBucketPolicyStatus,
        ] {
            let a = action(op, |_| false).unwrap();
            assert!(super::super::policy::ACTIONS.contains(&a), "{op:?} -> {a}");
        }
        assert_eq!(
            action(GetBucketConfig, |p| p == "cors"),
            Some("s3:GetBucketCORS")
        );
        assert_eq!(action(Unsupported, |_| false), None);
    }
}
