//! A photo as uploaded → a photo we can serve: decoded within limits, turned upright, shrunk to fit and written
//! again as a baseline JPEG. Writing it again is also what strips its metadata: the encoder writes pixels only,
//! so EXIF (camera, time, GPS location), XMP and comments never reach a reader.
//!
//! Decompression bombs (a few bytes declaring 30000 × 30000 pixels) are refused from the header, before any
//! pixel buffer is allocated: `image`'s `Limits` bound the dimensions and what the decoder may allocate.

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, error::LimitErrorKind};
use std::io::Cursor;

/// The most bytes an upload may have (a phone's 12-megapixel JPEG is 3–5 MB).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The longest side a photo may have before it is shrunk (48-megapixel phones write 8000 × 6000).
pub const MAX_SIDE: u32 = 8_000;
/// What the decoder may allocate: an 8000 × 6000 RGB photo is 144 MB.
const MAX_DECODED_BYTES: u64 = 200 * 1024 * 1024;
/// The longest side of a stored photo: sharp on a phone's card and page, small to send.
pub const STORED_SIDE: u32 = 1_200;
/// JPEG quality of a stored photo.
const QUALITY: u8 = 82;

/// The image types an upload may be, by the media type it is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadType {
    Jpeg,
    Png,
    Webp,
}

impl UploadType {
    /// `image/jpeg`, `image/png` or `image/webp` (case aside); `None` for any other type.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type.trim().to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }

    pub const MEDIA_TYPES: [&'static str; 3] = ["image/jpeg", "image/png", "image/webp"];

    fn format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Webp => ImageFormat::WebP,
        }
    }
}

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// More than [`MAX_BYTES`].
    TooManyBytes,
    /// A side over [`MAX_SIDE`], or more pixels than the decoder may hold.
    TooManyPixels { width: u32, height: u32 },
    /// Not an image of the type it was sent as (or a damaged one).
    NotAnImage,
}

/// A photo ready to store: JPEG bytes and their dimensions.
#[derive(Debug)]
pub struct Reencoded {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// Decodes `bytes` as `kind`, within the limits, and writes it again as a JPEG of at most
/// [`STORED_SIDE`] pixels a side. CPU-bound: call it off the async workers.
pub fn reencode(bytes: &[u8], kind: UploadType) -> Result<Reencoded, Refusal> {
    if bytes.len() > MAX_BYTES {
        return Err(Refusal::TooManyBytes);
    }
    // The sender's word is checked against the bytes: a PNG sent as image/jpeg is refused, not guessed.
    if image::guess_format(bytes).ok() != Some(kind.format()) {
        return Err(Refusal::NotAnImage);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|e| refusal(&e, None))?;
    let (width, height) = decoder.dimensions();
    let too_many = Refusal::TooManyPixels { width, height };
    let mut budget = limits();
    budget.check_dimensions(width, height).map_err(|_| too_many.clone())?;
    budget.reserve(decoder.total_bytes()).map_err(|_| too_many.clone())?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut photo = DynamicImage::from_decoder(decoder).map_err(|e| refusal(&e, Some(too_many)))?;
    photo.apply_orientation(orientation);
    let photo = if photo.width() > STORED_SIDE || photo.height() > STORED_SIDE {
        photo.resize(STORED_SIDE, STORED_SIDE, image::imageops::FilterType::CatmullRom)
    } else {
        photo
    };
    let rgb = flatten_on_white(&photo);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&rgb)
        .map_err(|_| Refusal::NotAnImage)?;
    Ok(Reencoded { jpeg, width: rgb.width(), height: rgb.height() })
}

/// JPEG has no transparency: a transparent PNG's background becomes white, not black.
fn flatten_on_white(photo: &DynamicImage) -> image::RgbImage {
    if !photo.color().has_alpha() {
        return photo.to_rgb8();
    }
    let rgba = photo.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn refusal(error: &ImageError, too_many: Option<Refusal>) -> Refusal {
    match error {
        ImageError::Limits(limit) => match limit.kind() {
            LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory => {
                too_many.unwrap_or(Refusal::TooManyPixels { width: 0, height: 0 })
            }
            _ => Refusal::NotAnImage,
        },
        _ => Refusal::NotAnImage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 40, 40, 128]));
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).expect("png");
        bytes
    }

    #[test]
    fn a_large_photo_is_shrunk_to_fit_and_becomes_a_jpeg() {
        let out = reencode(&png(2400, 600), UploadType::Png).expect("accepted");
        assert_eq!((out.width, out.height), (STORED_SIDE, 300));
        assert_eq!(image::guess_format(&out.jpeg).ok(), Some(ImageFormat::Jpeg));
        // Half-transparent red over white, not over black.
        let back = image::load_from_memory(&out.jpeg).expect("decodes").to_rgb8();
        assert!(back.get_pixel(10, 10).0[1] > 100, "{:?}", back.get_pixel(10, 10));
    }

    #[test]
    fn a_type_that_does_not_match_the_bytes_is_refused() {
        assert_eq!(reencode(&png(4, 4), UploadType::Jpeg).unwrap_err(), Refusal::NotAnImage);
        assert_eq!(reencode(b"GIF89a not really", UploadType::Png).unwrap_err(), Refusal::NotAnImage);
        assert_eq!(UploadType::from_media_type("image/gif"), None);
    }

    #[test]
    fn too_many_bytes_are_refused_before_decoding() {
        assert_eq!(reencode(&vec![0; MAX_BYTES + 1], UploadType::Png).unwrap_err(), Refusal::TooManyBytes);
    }
}
