//! A post's media, typed: what the service is told each item is. A bare URL is typed by its path's
//! extension (in any case, the query and fragment ignored: a presigned `…/clip.mp4?X-Amz-…` is a
//! video); anything not known to be a video, a GIF or a document is an image.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Image,
    Video,
    Gif,
    Document,
}

impl MediaType {
    pub const ALL: [MediaType; 4] = [MediaType::Image, MediaType::Video, MediaType::Gif, MediaType::Document];

    /// The name in the app's API and on the service's wire (`mediaItems[].type`).
    pub fn name(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Video => "video",
            MediaType::Gif => "gif",
            MediaType::Document => "document",
        }
    }

    pub fn from_name(name: &str) -> Option<MediaType> {
        MediaType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The type a bare URL stands for, by its path's extension.
    pub fn of_url(url: &str) -> MediaType {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let name = path.rsplit('/').next().unwrap_or(path);
        let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
        match extension.as_str() {
            "mp4" | "mov" | "m4v" | "webm" => MediaType::Video,
            "gif" => MediaType::Gif,
            "pdf" => MediaType::Document,
            _ => MediaType::Image,
        }
    }
}

/// One media item of a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: MediaType,
}

impl Media {
    /// A bare URL, typed by its extension.
    pub fn bare(url: &str) -> Media {
        Media { url: url.to_owned(), kind: MediaType::of_url(url) }
    }
}

/// A request's media: its bare URLs typed by extension, then its typed items, in that order.
pub fn combine(bare: &[String], typed: &[Media]) -> Vec<Media> {
    bare.iter().map(|url| Media::bare(url)).chain(typed.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_bare_url_is_typed_by_its_paths_extension_in_any_case_ignoring_the_query() {
        let kind = MediaType::of_url;
        assert_eq!(kind("https://cdn.example.com/reel/clip.mp4?X-Amz-Signature=abc.jpg"), MediaType::Video);
        assert_eq!(kind("https://cdn.example.com/a/CLIP.MOV"), MediaType::Video);
        assert_eq!(kind("https://cdn.example.com/a.m4v#t=3"), MediaType::Video);
        assert_eq!(kind("https://cdn.example.com/a.webm"), MediaType::Video);
        assert_eq!(kind("https://cdn.example.com/party.GIF"), MediaType::Gif);
        assert_eq!(kind("https://cdn.example.com/deck.pdf?download=1"), MediaType::Document);
        assert_eq!(kind("https://cdn.example.com/photo.jpeg"), MediaType::Image);
        assert_eq!(kind("https://cdn.example.com/no-extension"), MediaType::Image);
        assert_eq!(kind("https://cdn.example.com.mp4/"), MediaType::Image, "the host is not the path's extension");
        assert_eq!(kind("https://cdn.example.com/folder.mp4/photo"), MediaType::Image);
    }

    #[test]
    fn types_read_and_write_by_their_names() {
        for kind in MediaType::ALL {
            assert_eq!(MediaType::from_name(kind.name()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.name()));
        }
        assert_eq!(MediaType::from_name("audio"), None);
        assert_eq!(MediaType::from_name("Video"), None);
    }

    proptest! {
        /// The query and the fragment never change a URL's type.
        #[test]
        fn the_query_never_changes_the_type(path in "[a-z]{1,8}(\\.(mp4|MOV|gif|pdf|png|txt))?", query in "[ -~]{0,40}") {
            let url = format!("https://cdn.example.com/{path}");
            prop_assert_eq!(MediaType::of_url(&format!("{url}?{query}")), MediaType::of_url(&url));
            prop_assert_eq!(MediaType::of_url(&format!("{url}#{query}")), MediaType::of_url(&url));
        }
    }
}
