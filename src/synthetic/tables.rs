//! The tables people are drawn from: family, middle and given names, vaccines, provinces.

/// Family names (họ) weighted roughly like the population: Nguyễn ≈ 38 %.
pub(super) const FAMILY: [(&str, u32); 30] = [
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 30),
    ("Huỳnh", 21),
    ("Phan", 45),
    ("Vũ", 25),
    ("Võ", 14),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Đinh", 8),
    ("Trương", 8),
    ("Lâm", 4),
    ("Mai", 4),
    ("Trịnh", 4),
    ("Đoàn", 4),
    ("Lương", 3),
    ("Cao", 3),
    ("Tạ", 2),
    ("Châu", 2),
    ("Thái", 2),
    ("Tô", 2),
    ("Hà", 3),
    ("Kiều", 1),
];

pub(super) const MIDDLE_FIRST_M: [(&str, u32); 15] = [
    ("Văn", 550),
    ("Hữu", 60),
    ("Đức", 60),
    ("Minh", 60),
    ("Quang", 50),
    ("Công", 40),
    ("Thành", 40),
    ("Ngọc", 20),
    ("Xuân", 30),
    ("Duy", 30),
    ("Quốc", 30),
    ("Hoàng", 20),
    ("Trọng", 20),
    ("Gia", 20),
    ("Bảo", 20),
];

pub(super) const MIDDLE_FIRST_F: [(&str, u32); 13] = [
    ("Thị", 600),
    ("Ngọc", 60),
    ("Thu", 50),
    ("Minh", 40),
    ("Thanh", 50),
    ("Thúy", 20),
    ("Kim", 40),
    ("Hồng", 30),
    ("Phương", 30),
    ("Mai", 20),
    ("Bảo", 20),
    ("Khánh", 20),
    ("Quỳnh", 20),
];

pub(super) const MIDDLE_MORE_M: [&str; 16] = [
    "Minh", "Quang", "Đức", "Hữu", "Công", "Thành", "Xuân", "Duy", "Thanh", "Anh", "Tuấn", "Quốc", "Trọng", "Gia",
    "Nhật", "Tiến",
];

pub(super) const MIDDLE_MORE_F: [&str; 16] = [
    "Thu", "Ngọc", "Minh", "Thanh", "Kim", "Hồng", "Phương", "Mai", "Diệu", "Bảo", "Khánh", "Quỳnh", "Mỹ", "Hoài",
    "Bích", "Tuyết",
];

pub(super) const GIVEN_M: [&str; 46] = [
    "An", "Anh", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Đức", "Giang", "Hải", "Hiếu", "Hòa", "Hoàng", "Hùng",
    "Huy", "Khang", "Khánh", "Khoa", "Kiên", "Lâm", "Long", "Lộc", "Minh", "Nam", "Nghĩa", "Nhân", "Phong", "Phúc",
    "Quân", "Quang", "Quý", "Sơn", "Tài", "Tâm", "Thắng", "Thành", "Thịnh", "Toàn", "Trung", "Trí", "Tú", "Tuấn",
    "Việt", "Vinh", "Thụy",
];

pub(super) const GIVEN_F: [&str; 45] = [
    "An", "Anh", "Bích", "Chi", "Dung", "Duyên", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hòa", "Hồng", "Huệ",
    "Hương", "Khánh", "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Nhi", "Oanh",
    "Phương", "Quỳnh", "Tâm", "Thảo", "Thanh", "Thủy", "Thúy", "Thùy", "Trang", "Trinh", "Uyên", "Vân", "Vy", "Xuân",
    "Yến", "Quý",
];

/// Ê Đê-style names (Tây Nguyên): "Y Bih Niê" (male), "H'Hen Niê" (female), family name last.
pub(super) const ETHNIC_FAMILY: [&str; 10] =
    ["Niê", "Êban", "Mlô", "Ayun", "Byă", "Knul", "Hđơk", "Adrơng", "Ênuôl", "Kđoh"];
pub(super) const ETHNIC_GIVEN_M: [&str; 10] =
    ["Bih", "Moan", "Kông", "Blơng", "Dhăm", "Jut", "Nuê", "Wang", "Khuê", "Ju"];
pub(super) const ETHNIC_GIVEN_F: [&str; 10] = ["Hen", "Nga", "Xuân", "Juê", "Bla", "Yơn", "Mai", "Nuôn", "Loan", "Đam"];
/// Tây Nguyên provinces (GSO codes): Kon Tum, Gia Lai, Đắk Lắk, Đắk Nông, Lâm Đồng.
pub(super) const TAY_NGUYEN: [&str; 5] = ["62", "64", "66", "67", "68"];

/// Registry spelling (old tone placement) → the new placement some staff type (DOMAIN §4).
pub(super) const TONE_PLACEMENT: [(&str, &str); 5] =
    [("Hòa", "Hoà"), ("Thủy", "Thuỷ"), ("Thúy", "Thuý"), ("Thùy", "Thuỳ"), ("Thụy", "Thuỵ")];

/// Provinces (indices into `PROVINCES`) weighted by population, roughly: Hồ Chí Minh and Hà Nội
/// large, the northern mountains small.
pub(super) fn province_weight(code: &str) -> u32 {
    match code {
        "79" => 90,
        "01" => 83,
        "38" | "40" => 35,
        "74" | "75" => 28,
        "22" | "24" | "30" | "31" | "34" | "36" | "66" | "64" | "89" | "91" | "52" | "80" => 18,
        "02" | "04" | "06" | "08" | "10" | "11" | "12" | "14" | "15" | "62" | "67" | "93" | "95" | "58" | "45" => 5,
        _ => 10,
    }
}

/// A vaccine product as typed (local table; DOMAIN §3).
pub(super) struct Product {
    /// The EU `mp` code, as the product's identity in duplicate checks.
    pub(super) mp: &'static str,
    pub(super) primary: u8,
    /// Days between primary-series doses.
    pub(super) interval: (i64, i64),
    /// Spellings staff type, weighted (DOMAIN §3 "Names as typed at facilities").
    pub(super) typed: &'static [(&'static str, u32)],
    pub(super) lot_prefix: &'static str,
}

pub(super) const AZ: usize = 0;
pub(super) const PFIZER: usize = 1;
pub(super) const MODERNA: usize = 2;
pub(super) const VERO: usize = 3;
pub(super) const HAYAT: usize = 4;
pub(super) const SPUTNIK: usize = 5;
pub(super) const ABDALA: usize = 6;
pub(super) const JANSSEN: usize = 7;

pub(super) const PRODUCTS: [Product; 8] = [
    Product {
        mp: "EU/1/21/1529",
        primary: 2,
        interval: (56, 84),
        typed: &[
            ("AstraZeneca", 50),
            ("Astra Zeneca", 15),
            ("ASTRAZENECA", 8),
            ("Vaxzevria", 8),
            ("astrazeneca", 4),
            ("EU/1/21/1529", 3),
        ],
        lot_prefix: "ABV",
    },
    Product {
        mp: "EU/1/20/1528",
        primary: 2,
        interval: (21, 56),
        typed: &[
            ("Pfizer", 45),
            ("Pfizer-BioNTech", 15),
            ("Comirnaty", 10),
            ("PFIZER", 8),
            ("pfizer", 5),
            ("EU/1/20/1528", 3),
        ],
        lot_prefix: "FF",
    },
    Product {
        mp: "EU/1/20/1507",
        primary: 2,
        interval: (28, 56),
        typed: &[("Moderna", 55), ("Spikevax", 10), ("MODERNA", 8), ("EU/1/20/1507", 3)],
        lot_prefix: "30",
    },
    Product {
        mp: "BBIBP-CorV",
        primary: 2,
        interval: (21, 28),
        typed: &[("Vero Cell", 45), ("Verocell", 15), ("Sinopharm", 15), ("VERO CELL", 8), ("BBIBP-CorV", 3)],
        lot_prefix: "202107B",
    },
    Product {
        mp: "Hayat-Vax",
        primary: 2,
        interval: (21, 28),
        typed: &[("Hayat-Vax", 50), ("Hayat Vax", 20), ("HAYAT-VAX", 5)],
        lot_prefix: "HV",
    },
    Product {
        mp: "Sputnik-V",
        primary: 2,
        interval: (21, 28),
        typed: &[("Sputnik V", 55), ("Sputnik-V", 15), ("SPUTNIK V", 5)],
        lot_prefix: "I",
    },
    Product { mp: "Abdala", primary: 3, interval: (14, 16), typed: &[("Abdala", 60), ("ABDALA", 10)], lot_prefix: "L" },
    Product {
        mp: "EU/1/20/1525",
        primary: 1,
        interval: (0, 0),
        typed: &[("Janssen", 50), ("J&J", 20), ("Johnson & Johnson", 5), ("EU/1/20/1525", 3)],
        lot_prefix: "XD",
    },
];

/// Primary-series products given to adults in 2021 (Vero Cell and AstraZeneca most).
pub(super) const ADULT_PRODUCTS: [(usize, u32); 8] =
    [(AZ, 300), (VERO, 270), (PFIZER, 250), (MODERNA, 100), (SPUTNIK, 25), (HAYAT, 15), (ABDALA, 25), (JANSSEN, 15)];
pub(super) const CHILD_PRODUCTS: [(usize, u32); 2] = [(PFIZER, 950), (MODERNA, 50)];
pub(super) const BOOSTER_PRODUCTS: [(usize, u32); 3] = [(PFIZER, 550), (MODERNA, 380), (AZ, 70)];

/// Products not licensed for the passport (DOMAIN §3).
pub(super) const UNKNOWN_VACCINES: [&str; 6] =
    ["Nanocovax", "Covaxin", "CoronaVac", "Sputnik Light", "Sinovac", "Novavax"];

/// Age bands (from, to exclusive, weight ‰), Viet Nam 2021-ish.
pub(super) const AGE_BANDS: [(i64, i64, u32); 19] = [
    (0, 5, 75),
    (5, 10, 80),
    (10, 15, 77),
    (15, 20, 68),
    (20, 25, 70),
    (25, 30, 80),
    (30, 35, 83),
    (35, 40, 79),
    (40, 45, 73),
    (45, 50, 66),
    (50, 55, 60),
    (55, 60, 52),
    (60, 65, 44),
    (65, 70, 33),
    (70, 75, 20),
    (75, 80, 12),
    (80, 85, 8),
    (85, 90, 5),
    (90, 96, 3),
];

/// Province codes (2-digit GSO form) that do not exist (DOMAIN §2).
pub(super) const NO_SUCH_PROVINCE: [&str; 12] =
    ["03", "05", "07", "09", "13", "16", "18", "21", "23", "28", "39", "99"];

pub(super) const PHONE_PREFIXES: [&str; 16] =
    ["090", "091", "093", "094", "096", "097", "098", "032", "033", "034", "035", "038", "070", "077", "086", "088"];

/// (nationality, family names, given names — male at even, female at odd positions — family
/// name first?)
pub(super) const FOREIGN: [(&str, [&str; 5], [&str; 5], bool); 7] = [
    ("KR", ["Kim", "Lee", "Park", "Choi", "Jung"], ["Min Jun", "Seo Yeon", "Ji Hoon", "Ha Eun", "Do Yoon"], true),
    ("US", ["Smith", "Johnson", "Brown", "Miller", "Davis"], ["John", "Emily", "Michael", "Sarah", "David"], false),
    ("CN", ["Wang", "Li", "Zhang", "Liu", "Chen"], ["Wei", "Fang", "Jun", "Na", "Yang"], true),
    ("JP", ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"], ["Hiroshi", "Yuki", "Kenji", "Aiko", "Takumi"], true),
    (
        "FR",
        ["Martin", "Bernard", "Dubois", "Thomas", "Robert"],
        ["Pierre", "Marie", "Louis", "Camille", "Julien"],
        false,
    ),
    ("AU", ["Taylor", "Wilson", "White", "Walker", "Harris"], ["Jack", "Olivia", "Liam", "Chloe", "Noah"], false),
    ("DE", ["Müller", "Schmidt", "Fischer", "Weber", "Wagner"], ["Lukas", "Anna", "Felix", "Lena", "Jonas"], false),
];
