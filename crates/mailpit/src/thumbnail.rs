//! Thumbnails of image attachments (`GET /api/v1/message/{ID}/part/{PartID}/thumb`), as
//! Mailpit makes them: 180×120 JPEGs.
//!
//! An image is a stranger's file, and a small one can declare a huge picture (a 400 KB PNG
//! of 8000×8000 pixels at 16 bits a channel decodes to 384 MB), so an image is decoded only
//! when its header says it fits in `[http] max_image_bytes`, with the decoder held to the
//! same limit. Each thumbnail is made once and kept (the newest `[http] thumbnail_cache`),
//! at most `[http] thumbnails_at_once` are made at a time, each off the async workers, and
//! any web page can ask for them as often as it likes.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::Mutex;

use bytes::Bytes;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};
use tokio::sync::Semaphore;
use tokio::task::JoinError;

/// Thumbnails are this size, as in Mailpit.
const THUMB: (u32, u32) = (180, 120);

/// A part: its message's ID and its own.
type PartKey = (String, String);

/// The thumbnails made so far, and the turns to make more.
pub(crate) struct Thumbnails {
    /// By part, and the parts in the order they were made (the oldest is forgotten first).
    made: Mutex<(HashMap<PartKey, Bytes>, VecDeque<PartKey>)>,
    keep: usize,
    turns: Semaphore,
    max_bytes: u64,
}

impl Thumbnails {
    pub(crate) fn new(keep: usize, at_once: usize, max_bytes: u64) -> Self {
        Self {
            made: Mutex::new((HashMap::new(), VecDeque::new())),
            keep,
            turns: Semaphore::new(at_once),
            max_bytes,
        }
    }

    fn cached(&self, key: &PartKey) -> Option<Bytes> {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.0.get(key).cloned()
    }

    /// The thumbnail of the part `key`, whose bytes are `bytes`: the one made before, or one
    /// made now, off the async workers and after waiting for a turn.
    pub(crate) async fn of(&self, key: PartKey, bytes: Vec<u8>) -> Result<Bytes, JoinError> {
        if let Some(jpeg) = self.cached(&key) {
            return Ok(jpeg);
        }
        // The semaphore is never closed: it lives as long as the thumbnails.
        let _turn = self.turns.acquire().await;
        // Another request for the same part may have made it while this one waited.
        if let Some(jpeg) = self.cached(&key) {
            return Ok(jpeg);
        }
        let max_bytes = self.max_bytes;
        let jpeg =
            tokio::task::spawn_blocking(move || Bytes::from(thumbnail_of(&bytes, max_bytes)))
                .await?;
        self.keep(key, jpeg.clone());
        Ok(jpeg)
    }

    fn keep(&self, key: PartKey, jpeg: Bytes) {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *made;
        if map.insert(key.clone(), jpeg).is_none() {
            order.push_back(key);
        }
        while order.len() > self.keep {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
    }
}

/// `bytes` decoded, if they are a PNG, JPEG or GIF whose picture fits in `max_bytes`. The
/// header is read first: nothing is allocated for a picture that does not fit.
pub(crate) fn decoded(bytes: &[u8], max_bytes: u64) -> Option<DynamicImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif)
    ) {
        return None;
    }
    let mut decoder = reader.into_decoder().ok()?;
    if decoder.total_bytes() > max_bytes {
        return None;
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_bytes);
    decoder.set_limits(limits).ok()?;
    DynamicImage::from_decoder(decoder).ok()
}

/// The JPEG thumbnail of `bytes`; a blank one if they are not a readable image within
/// `max_bytes` decoded.
pub(crate) fn thumbnail_of(bytes: &[u8], max_bytes: u64) -> Vec<u8> {
    let (width, height) = THUMB;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    if let Some(image) = decoded(bytes, max_bytes) {
        let fitted = if image.width() >= width && image.height() >= height {
            image.resize_to_fill(width, height, FilterType::Triangle)
        } else if image.width() > width || image.height() > height {
            // Long and thin: the whole of it, fitted inside and padded.
            image.resize(width, height, FilterType::Triangle)
        } else {
            image // smaller than a thumbnail: padded, not enlarged
        };
        let fitted = DynamicImage::ImageRgba8(fitted.to_rgba8());
        let x = (i64::from(width) - i64::from(fitted.width())) / 2;
        let y = (i64::from(height) - i64::from(fitted.height())) / 2;
        let mut layer = DynamicImage::ImageRgb8(canvas);
        image::imageops::overlay(&mut layer, &fitted, x, y);
        canvas = layer.to_rgb8();
    }
    let mut jpeg = Cursor::new(Vec::new());
    // Writing an RGB image to memory cannot fail.
    let _ = DynamicImage::ImageRgb8(canvas).write_to(&mut jpeg, ImageFormat::Jpeg);
    jpeg.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 48 * 1024 * 1024;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    fn jpeg_of(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8()
    }

    fn is_blank(thumb: &RgbImage) -> bool {
        thumb.pixels().all(|p| p.0.iter().all(|c| *c > 240))
    }

    #[test]
    fn large_images_are_cropped_to_fill_small_ones_padded_others_blank() {
        let large = jpeg_of(&thumbnail_of(&png(900, 300), MAX));
        assert_eq!(large.dimensions(), THUMB);
        assert!(large.get_pixel(0, 0)[0] > 150 && large.get_pixel(0, 0)[1] < 80);

        let small = jpeg_of(&thumbnail_of(&png(20, 20), MAX));
        assert_eq!(small.dimensions(), THUMB);
        let corner = small.get_pixel(0, 0);
        let middle = small.get_pixel(90, 60);
        assert!(corner[1] > 200, "padded with white: {corner:?}");
        assert!(middle[1] < 80, "the image in the middle: {middle:?}");

        // Long and thin: the whole of it fitted (12×120), not its middle at its own size.
        let thin = jpeg_of(&thumbnail_of(&png(150, 1500), MAX));
        assert!(thin.get_pixel(90, 60)[1] < 80, "the image in the middle");
        assert!(thin.get_pixel(20, 60)[1] > 200, "padded beside it");

        let blank = jpeg_of(&thumbnail_of(b"not an image", MAX));
        assert_eq!(blank.dimensions(), THUMB);
        assert!(is_blank(&blank));
    }

    /// A PNG header that declares `width`×`height` at 16 bits a channel, and no pixels.
    fn declared(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Sixteen);
        drop(encoder.write_header().unwrap());
        out
    }

    #[test]
    fn a_picture_bigger_than_the_limit_is_never_decoded() {
        // 8000×8000 at six bytes a pixel: 384 MB declared in 45 bytes.
        let bomb = declared(8000, 8000);
        assert!(bomb.len() < 100);
        assert!(decoded(&bomb, MAX).is_none());
        assert!(is_blank(&jpeg_of(&thumbnail_of(&bomb, MAX))));
        // Within the limit it is decoded (here: found short of pixels, and so blank too).
        let fits = png(300, 200);
        assert!(decoded(&fits, 300 * 200 * 3).is_some());
        assert!(decoded(&fits, 300 * 200 * 3 - 1).is_none());
    }

    #[test]
    fn thumbnails_are_kept_newest_first_up_to_their_number() {
        let thumbnails = Thumbnails::new(2, 1, MAX);
        let key = |n: &str| (n.to_owned(), "1".to_owned());
        for n in ["a", "b", "c"] {
            thumbnails.keep(key(n), Bytes::from(n.to_owned()));
        }
        assert_eq!(
            thumbnails.cached(&key("a")),
            None,
            "the oldest is forgotten"
        );
        assert_eq!(thumbnails.cached(&key("c")), Some(Bytes::from("c")));
        thumbnails.keep(key("c"), Bytes::from("again"));
        assert_eq!(thumbnails.cached(&key("b")), Some(Bytes::from("b")));
    }
}
