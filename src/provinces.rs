//! Vietnam's provinces by GSO code (DOMAIN §2): the `PP` of facility codes and provincial CAs,
//! and, with a leading zero, the `PPP` of CCCD numbers. Codes not listed do not exist.

/// (2-digit GSO code, name), sorted by code.
pub(crate) const PROVINCES: [(&str, &str); 63] = [
    ("01", "Hà Nội"),
    ("02", "Hà Giang"),
    ("04", "Cao Bằng"),
    ("06", "Bắc Kạn"),
    ("08", "Tuyên Quang"),
    ("10", "Lào Cai"),
    ("11", "Điện Biên"),
    ("12", "Lai Châu"),
    ("14", "Sơn La"),
    ("15", "Yên Bái"),
    ("17", "Hòa Bình"),
    ("19", "Thái Nguyên"),
    ("20", "Lạng Sơn"),
    ("22", "Quảng Ninh"),
    ("24", "Bắc Giang"),
    ("25", "Phú Thọ"),
    ("26", "Vĩnh Phúc"),
    ("27", "Bắc Ninh"),
    ("30", "Hải Dương"),
    ("31", "Hải Phòng"),
    ("33", "Hưng Yên"),
    ("34", "Thái Bình"),
    ("35", "Hà Nam"),
    ("36", "Nam Định"),
    ("37", "Ninh Bình"),
    ("38", "Thanh Hóa"),
    ("40", "Nghệ An"),
    ("42", "Hà Tĩnh"),
    ("44", "Quảng Bình"),
    ("45", "Quảng Trị"),
    ("46", "Thừa Thiên Huế"),
    ("48", "Đà Nẵng"),
    ("49", "Quảng Nam"),
    ("51", "Quảng Ngãi"),
    ("52", "Bình Định"),
    ("54", "Phú Yên"),
    ("56", "Khánh Hòa"),
    ("58", "Ninh Thuận"),
    ("60", "Bình Thuận"),
    ("62", "Kon Tum"),
    ("64", "Gia Lai"),
    ("66", "Đắk Lắk"),
    ("67", "Đắk Nông"),
    ("68", "Lâm Đồng"),
    ("70", "Bình Phước"),
    ("72", "Tây Ninh"),
    ("74", "Bình Dương"),
    ("75", "Đồng Nai"),
    ("77", "Bà Rịa - Vũng Tàu"),
    ("79", "Hồ Chí Minh"),
    ("80", "Long An"),
    ("82", "Tiền Giang"),
    ("83", "Bến Tre"),
    ("84", "Trà Vinh"),
    ("86", "Vĩnh Long"),
    ("87", "Đồng Tháp"),
    ("89", "An Giang"),
    ("91", "Kiên Giang"),
    ("92", "Cần Thơ"),
    ("93", "Hậu Giang"),
    ("94", "Sóc Trăng"),
    ("95", "Bạc Liêu"),
    ("96", "Cà Mau"),
];

/// Codes of facilities outside the provinces: Ministry of Defence and of Public Security.
const MINISTRY_FACILITY_PREFIXES: [(&str, &str); 2] = [("97", "Bộ Quốc phòng"), ("98", "Bộ Công an")];

/// The province named by a 2-digit GSO code.
pub(crate) fn province_name(code: &str) -> Option<&'static str> {
    PROVINCES.binary_search_by(|(c, _)| (*c).cmp(code)).ok().and_then(|i| PROVINCES.get(i)).map(|(_, name)| *name)
}

/// The province, or the ministry (97, 98), that a facility-code prefix `PP` names.
pub(crate) fn prefix_name(pp: &str) -> Option<&'static str> {
    province_name(pp).or_else(|| MINISTRY_FACILITY_PREFIXES.iter().find(|(p, _)| *p == pp).map(|(_, name)| *name))
}

/// Whether `code` is a well-formed facility code (mã cơ sở KCB, `PPNNN`, Decision 384/QĐ-BYT):
/// five ASCII digits whose `PP` is a province or one of the ministries' prefixes 97/98.
pub(crate) fn is_facility_code(code: &str) -> bool {
    code.len() == 5
        && code.bytes().all(|b| b.is_ascii_digit())
        && code.get(..2).is_some_and(|pp| prefix_name(pp).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(PROVINCES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(province_name("01"), Some("Hà Nội"));
        assert_eq!(province_name("79"), Some("Hồ Chí Minh"));
        assert_eq!(province_name("03"), None);
        assert!(is_facility_code("01001"));
        assert!(is_facility_code("97012"));
        assert_eq!(prefix_name("98"), Some("Bộ Công an"));
        assert!(!is_facility_code("03001"));
        assert!(!is_facility_code("0100"));
        assert!(!is_facility_code("01a01"));
    }
}
