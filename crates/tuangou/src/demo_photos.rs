//! The demo city's photos, made when the demo is seeded (nothing is downloaded): a soft diagonal gradient in the
//! category's colours, a plate with a motif that differs from deal to deal, and a light grain,
//! uploaded through the same use case an owner's upload goes through (re-encoded, stored, served). Written as
//! JPEG: its codec is the one the upload path uses anyway, and it is quick even in a debug build.

#[cfg(test)]
use image::ImageFormat;
use image::{Rgb, RgbImage};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
/// The plate's radius and the ring of dots on it, in pixels.
const PLATE: f32 = 150.0;
const RING: f32 = 78.0;

/// Two colours per category (light, deep); unknown categories take the brand's.
fn palette(category: &str) -> ([f32; 3], [f32; 3]) {
    match category {
        "火锅" => ([250., 128., 84.], [178., 34., 24.]),
        "茶饮" => ([168., 214., 150.], [46., 110., 60.]),
        "酒吧" => ([150., 120., 220.], [52., 30., 110.]),
        "甜品" => ([252., 190., 210.], [196., 70., 120.]),
        "咖啡" => ([214., 170., 120.], [92., 56., 32.]),
        "烧烤" => ([255., 190., 90.], [170., 70., 10.]),
        "串串" => ([255., 150., 120.], [150., 30., 60.]),
        "烘焙" => ([250., 220., 160.], [190., 120., 40.]),
        "面馆" => ([255., 226., 120.], [200., 110., 20.]),
        _ => ([240., 121., 58.], [217., 56., 30.]),
    }
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// Coverage of a disc's edge at distance `d` from its centre, radius `r`: 1 inside, 0 outside, smooth over 1.5 px.
fn disc(d: f32, r: f32) -> f32 {
    ((r - d) / 1.5 + 0.5).clamp(0.0, 1.0)
}

/// A photo for the `variant`-th picture of a category, as JPEG bytes. Cheap enough to make thirty at start-up
/// in a debug build: the work per pixel outside the plate is a blend.
pub fn picture(category: &str, variant: usize) -> Vec<u8> {
    let (light, deep) = palette(category);
    let (w, h) = (WIDTH as f32, HEIGHT as f32);
    // The plate sits left, centre or right; the ring of dots on it turns with the variant.
    let (cx, cy) = ([0.36, 0.5, 0.64][variant % 3] * w, 0.54 * h);
    let dots: Vec<(f32, f32, f32)> = (0..7)
        .map(|k| {
            let a = variant as f32 * 0.9 + k as f32 * std::f32::consts::TAU / 7.0;
            (cx + RING * a.cos(), cy + RING * a.sin(), 22. - (k % 3) as f32 * 3.5)
        })
        .collect();
    let centre = mix(deep, light, 0.35);
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        // A diagonal gradient, lighter towards the top left.
        let t = ((fx / w) * 0.55 + (fy / h) * 0.45).clamp(0.0, 1.0);
        let mut c = mix(mix(light, [255., 255., 255.], (1.0 - t) * 0.3), deep, t);
        let (dx, dy) = (fx - cx, fy - cy);
        if dx.abs() < PLATE + 20. && dy.abs() < PLATE + 20. {
            let d = dx.hypot(dy);
            // The plate's shadow, rim and well.
            c = mix(c, [0., 0., 0.], disc((dx - 8.).hypot(dy - 11.), PLATE + 8.) * 0.22);
            c = mix(c, [250., 248., 244.], disc(d, PLATE));
            c = mix(c, [236., 232., 226.], disc(d, PLATE - 24.) * 0.8);
            for &(px, py, r) in &dots {
                if (fx - px).abs() <= r + 2. && (fy - py).abs() <= r + 2. {
                    c = mix(c, deep, disc((fx - px).hypot(fy - py), r) * 0.9);
                }
            }
            c = mix(c, centre, disc(d, 38.));
        }
        // A little grain, so the re-encoded JPEG looks like a photo rather than a flat drawing.
        let grain = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 13) as f32 * 0.6 - 3.6;
        Rgb(c.map(|v| (v + grain).clamp(0., 255.) as u8))
    });
    let mut bytes = Vec::new();
    // Writing to memory does not fail for an RGB image; an empty answer would be refused by the upload anyway.
    let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92).encode_image(&image);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_jpegs_that_differ_by_category_and_variant() {
        let hotpot = picture("火锅", 0);
        assert_eq!(image::guess_format(&hotpot).ok(), Some(ImageFormat::Jpeg));
        assert_ne!(hotpot, picture("咖啡", 0));
        assert_ne!(hotpot, picture("火锅", 1));
    }
}
