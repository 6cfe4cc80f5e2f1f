//! Where a store is: coordinates, distances, and the links that open it in the map apps customers use.
//!
//! Coordinates are WGS-84 degrees (what a phone's location API gives). The Amap and Baidu links say so
//! (`coordinate=wgs84`, `coord_type=wgs84`), so those apps convert to their own datums themselves.

use crate::Invalid;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    latitude: f64,
    longitude: f64,
}

/// The mean Earth radius used for distances, in kilometres.
const EARTH_RADIUS_KM: f64 = 6_371.008_8;

impl Coordinates {
    pub fn parse(latitude: f64, longitude: f64) -> Result<Self, Invalid> {
        if !(latitude.is_finite() && (-90.0..=90.0).contains(&latitude)) {
            return Err(Invalid::field("latitude", "must be from -90 to 90"));
        }
        if !(longitude.is_finite() && (-180.0..=180.0).contains(&longitude)) {
            return Err(Invalid::field("longitude", "must be from -180 to 180"));
        }
        Ok(Self { latitude, longitude })
    }

    /// Coordinates read back from the store, which checked them on the way in; out-of-range values (a hand-edited
    /// database) are clamped rather than trusted.
    pub fn from_stored(latitude: f64, longitude: f64) -> Self {
        let clamp = |v: f64, limit: f64| if v.is_finite() { v.clamp(-limit, limit) } else { 0.0 };
        Self { latitude: clamp(latitude, 90.0), longitude: clamp(longitude, 180.0) }
    }

    pub fn latitude(self) -> f64 {
        self.latitude
    }

    pub fn longitude(self) -> f64 {
        self.longitude
    }

    /// Great-circle distance (haversine), in kilometres.
    pub fn distance_km(self, other: Coordinates) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let d_lat = lat2 - lat1;
        let d_lng = (other.longitude - self.longitude).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }

    /// A latitude/longitude box that contains every point within `radius_km`: a cheap, index-friendly first
    /// filter for the store; the exact distance is computed afterwards. Near the poles it widens to all longitudes.
    pub fn bounding_box(self, radius_km: f64) -> BoundingBox {
        let d_lat = (radius_km / EARTH_RADIUS_KM).to_degrees();
        let cos_lat = self.latitude.to_radians().cos();
        let d_lng = if cos_lat < 1e-6 { 180.0 } else { (d_lat / cos_lat).min(180.0) };
        BoundingBox {
            min_latitude: (self.latitude - d_lat).max(-90.0),
            max_latitude: (self.latitude + d_lat).min(90.0),
            min_longitude: (self.longitude - d_lng).max(-180.0),
            max_longitude: (self.longitude + d_lng).min(180.0),
            wraps: self.longitude - d_lng < -180.0 || self.longitude + d_lng > 180.0,
        }
    }
}

/// See [`Coordinates::bounding_box`]. `wraps` is true when the box crosses the antimeridian, in which case the
/// longitude bounds must not be used as a filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_latitude: f64,
    pub max_latitude: f64,
    pub min_longitude: f64,
    pub max_longitude: f64,
    pub wraps: bool,
}

/// Links that open the store in each map app, and a `geo:` URI for everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NavigationLinks {
    pub amap: String,
    pub baidu: String,
    pub apple: String,
    pub google: String,
    pub geo: String,
}

impl NavigationLinks {
    pub fn new(at: Coordinates, name: &str, address: &str) -> Self {
        let (lat, lng) = (at.latitude, at.longitude);
        let name = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
        let address = utf8_percent_encode(address, NON_ALPHANUMERIC).to_string();
        Self {
            amap: format!("https://uri.amap.com/marker?position={lng},{lat}&name={name}&coordinate=wgs84&callnative=1"),
            baidu: format!(
                "https://api.map.baidu.com/marker?location={lat},{lng}&title={name}&content={address}\
                 &coord_type=wgs84&output=html&src=tuangou"
            ),
            apple: format!("https://maps.apple.com/?ll={lat},{lng}&q={name}"),
            google: format!("https://www.google.com/maps/search/?api=1&query={lat},{lng}"),
            geo: format!("geo:{lat},{lng}?q={lat},{lng}({name})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_checked() {
        assert!(Coordinates::parse(30.66, 104.06).is_ok());
        assert_eq!(Coordinates::parse(91.0, 0.0).unwrap_err().field, "latitude");
        assert_eq!(Coordinates::parse(0.0, -180.5).unwrap_err().field, "longitude");
        assert!(Coordinates::parse(f64::NAN, 0.0).is_err());
    }

    #[test]
    fn distance_in_chengdu_is_about_right() {
        // Tianfu Square to Chunxi Road: about 1.3 km.
        let square = Coordinates::parse(30.6574, 104.0658).unwrap();
        let chunxi = Coordinates::parse(30.6563, 104.0800).unwrap();
        let d = square.distance_km(chunxi);
        assert!((1.2..1.5).contains(&d), "{d}");
        let bbox = square.bounding_box(2.0);
        assert!(bbox.min_latitude < chunxi.latitude() && chunxi.latitude() < bbox.max_latitude);
        assert!(bbox.min_longitude < chunxi.longitude() && chunxi.longitude() < bbox.max_longitude);
        assert!(!bbox.wraps);
    }

    #[test]
    fn links_carry_the_coordinates_and_an_escaped_name() {
        let links = NavigationLinks::new(Coordinates::parse(30.5, 104.25).unwrap(), "老码头 火锅", "春熙路 1 号");
        assert!(links.amap.contains("position=104.25,30.5"));
        assert!(links.amap.contains("coordinate=wgs84"));
        assert!(links.baidu.contains("location=30.5,104.25"));
        assert!(links.apple.contains("ll=30.5,104.25"));
        assert!(links.google.contains("query=30.5,104.25"));
        assert!(links.geo.starts_with("geo:30.5,104.25?q="));
        assert!(!links.geo.contains(' '));
    }
}
