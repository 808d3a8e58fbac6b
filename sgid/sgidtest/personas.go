package sgidtest

import (
	"encoding/json"
	"maps"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

// Persona is a fictional person the server can log in. NRICs and FINs have
// valid check letters but sequential digits (S0000001I), so nobody mistakes
// them for real ones.
type Persona struct {
	ID    string            // short, URL-safe, e.g. "tan-ah-kow"
	Label string            // for the chooser page
	Data  map[string]string // scope name -> value, exactly as the userinfo plaintext (strings)
}

// Catalog returns every scope in sgID's data catalog, "openid" first: the
// one list, sgid.Catalog, which the server grants and its personas fill.
func Catalog() []string { return sgid.Catalog() }

// Personas returns the server's personas, the default one first. Each has a
// value for every catalog scope but openid, "NA" where sgID would have none.
func Personas() []Persona {
	out := make([]Persona, len(personas))
	for i, p := range personas {
		p.Data = maps.Clone(p.Data)
		out[i] = p
	}
	return out
}

func personaByID(id string) (Persona, bool) {
	for _, p := range personas {
		if p.ID == id {
			return p, true
		}
	}
	return Persona{}, false
}

// The JSON-valued fields are built from structs so that their key order and
// escaping are what encoding/json produces, as on the real server.
type vehicle struct {
	VehicleNumber string `json:"vehicle_number"`
}

type vaccination struct {
	Fulfilled   string `json:"fulfilled"`
	Requirement string `json:"requirement"`
}

type childBirthRecord struct {
	BirthCertNo             string        `json:"birth_cert_no"`
	Name                    string        `json:"name"`
	DateOfBirth             string        `json:"date_of_birth"`
	Sex                     string        `json:"sex"`
	Race                    string        `json:"race"`
	LifeStatus              string        `json:"life_status"`
	SecondaryRace           string        `json:"secondary_race"`
	VaccinationRequirements []vaccination `json:"vaccination_requirements"`
	IsSGCitizenAtBirth      string        `json:"is_sg_citizen_at_birth"`
}

type sponsoredChildRecord struct {
	NRIC              string `json:"nric"`
	Name              string `json:"name"`
	DateOfBirth       string `json:"date_of_birth"`
	Sex               string `json:"sex"`
	Race              string `json:"race"`
	LifeStatus        string `json:"life_status"`
	Nationality       string `json:"nationality"`
	ResidentialStatus string `json:"residential_status"`
	SecondaryRace     string `json:"secondary_race"`
}

type publicOfficerEmployment struct {
	WorkEmail       string `json:"work_email"`
	AgencyName      string `json:"agency_name"`
	DepartmentName  string `json:"department_name"`
	EmploymentType  string `json:"employment_type"`
	EmploymentTitle string `json:"employment_title"`
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sgidtest: encoding persona data: " + err.Error())
	}
	return string(b)
}

// vaccinations returns the school-admission record of a child who has had
// the first done of these requirements.
func vaccinations(done int) []vaccination {
	reqs := []string{
		"Hepatitis B (HepB) Vaccination Fulfilled",
		"Diphtheria, Tetanus and Pertussis (DTaP) Vaccination Fulfilled",
		"Poliovirus (IPV) Vaccination Fulfilled",
		"Pneumococcal Conjugate (PCV) Vaccination Fulfilled",
		"Measles, Mumps and Rubella (MMR) Vaccination Fulfilled",
		"Preschool Admission Vaccination Min Requirement Fulfilled",
		"Primary School Admission Vaccination Min Requirement Fulfilled",
	}
	out := make([]vaccination, len(reqs))
	for i, r := range reqs {
		out[i] = vaccination{Fulfilled: "FALSE", Requirement: r}
		if i < done {
			out[i].Fulfilled = "TRUE"
		}
	}
	return out
}

// withNA fills every catalog scope the persona has no data for with "NA",
// as sgID does.
func withNA(data map[string]string) map[string]string {
	for _, sc := range sgid.Catalog()[1:] {
		if _, ok := data[sc]; !ok {
			data[sc] = "NA"
		}
	}
	return data
}

var personas = []Persona{
	{
		ID:    "tan-ah-kow",
		Label: "Tan Ah Kow: citizen, full record",
		Data: withNA(map[string]string{
			"myinfo.name":                            "TAN AH KOW",
			"myinfo.nric_number":                     "S0000001I",
			"myinfo.date_of_birth":                   "1980-03-15",
			"myinfo.passport_number":                 "E0000001B",
			"myinfo.passport_expiry_date":            "2031-06-30",
			"myinfo.mobile_number":                   "80000001",
			"myinfo.mobile_number_with_country_code": "+65 80000001",
			"myinfo.email":                           "tan.ah.kow@example.com",
			"myinfo.registered_address":              "BLK 123 ANG MO KIO AVENUE 3\n#12-34\nSINGAPORE 560123",
			"myinfo.sex":                             "MALE",
			"myinfo.race":                            "CHINESE",
			"myinfo.nationality":                     "SINGAPOREAN",
			"myinfo.residentialstatus":               "SINGAPORE CITIZEN",
			"myinfo.housingtype":                     "HDB",
			"myinfo.hdbtype":                         "4-ROOM FLAT (HDB)",
			"myinfo.birth_country":                   "SINGAPORE",
			"myinfo.vehicles":                        mustJSON([]vehicle{{"SJH1234A"}, {"SGX5678B"}}),
			"myinfo.name_of_employer":                "EXAMPLE LOGISTICS PTE. LTD.",
			"myinfo.marital_status":                  "MARRIED",
			"myinfo.dialect":                         "HOKKIEN",
			"myinfo.occupation":                      "ACCOUNTANT",
			"myinfo.country_of_marriage":             "SINGAPORE",
			"myinfo.marriage_certificate_number":     "10001",
			"myinfo.marriage_date":                   "2008-11-22",
			"myinfo.children_birth_records": mustJSON([]childBirthRecord{
				{"T1500014C", "TAN XIAO HUI", "2015-02-07", "FEMALE", "CHINESE", "ALIVE", "", vaccinations(7), "Y"},
			}),
			"myinfo.sponsored_children_records": "[]",
			"myinfo.nric_last_four_characters":  "*****001I",
			"myinfo.is_age_above_18":            "true",
			"myinfo.is_age_above_21":            "true",
			"pocdex.public_officer_details":     "[]",
			"pocdex.number_of_employments":      "0",
		}),
	},
	{
		ID:    "nur-aisyah",
		Label: "Nur Aisyah binte Rahman: parent of five, remarried",
		Data: withNA(map[string]string{
			"myinfo.name":                            "NUR AISYAH BINTE RAHMAN",
			"myinfo.nric_number":                     "S0000002G",
			"myinfo.date_of_birth":                   "1984-07",
			"myinfo.passport_number":                 "E0000002C",
			"myinfo.passport_expiry_date":            "2029-01-15",
			"myinfo.mobile_number":                   "90000002",
			"myinfo.mobile_number_with_country_code": "+65 90000002",
			"myinfo.email":                           "nur.aisyah@example.net",
			"myinfo.registered_address":              "28 JALAN KEMBANGAN\n#03-07\nSERAYA GARDENS\nSINGAPORE 419125",
			"myinfo.sex":                             "FEMALE",
			"myinfo.race":                            "MALAY",
			"myinfo.nationality":                     "SINGAPOREAN",
			"myinfo.residentialstatus":               "SINGAPORE CITIZEN",
			"myinfo.housingtype":                     "CONDOMINIUM",
			"myinfo.birth_country":                   "SINGAPORE",
			"myinfo.vehicles":                        "[]",
			"myinfo.marital_status":                  "MARRIED",
			"myinfo.occupation":                      "TEACHER",
			"myinfo.country_of_marriage":             "MALAYSIA",
			"myinfo.marriage_certificate_number":     "20731",
			"myinfo.marriage_date":                   "2015-09-12",
			"myinfo.divorce_date":                    "2012-03-30",
			// Kilobytes long, like a real family's: clients must not
			// truncate or choke on big fields.
			"myinfo.children_birth_records": mustJSON([]childBirthRecord{
				{"T0900011E", "MUHAMMAD IRFAN BIN HAKIM", "2009-04-18", "MALE", "MALAY", "ALIVE", "", vaccinations(7), "Y"},
				{"T1100012B", "NUR ALYA BINTE HAKIM", "2011-01-03", "FEMALE", "MALAY", "ALIVE", "", vaccinations(7), "Y"},
				{"T1300013H", "ADAM HAKIMI BIN HAKIM", "2013-10-26", "MALE", "MALAY", "ALIVE", "ARAB", vaccinations(6), "Y"},
				{"T1700015I", "ZARA ELENA BINTE FIRDAUS", "2017-06-09", "FEMALE", "MALAY", "ALIVE", "EURASIAN", vaccinations(6), "Y"},
				{"T1600016C", "YUSUF BIN FIRDAUS", "2019-12-31", "MALE", "MALAY", "ALIVE", "EURASIAN", vaccinations(4), "Y"},
			}),
			"myinfo.sponsored_children_records": mustJSON([]sponsoredChildRecord{
				{"T1400017D", "DANIEL FIRDAUS BIN ISMAIL", "2014-05-05", "MALE", "MALAY", "ALIVE", "MALAYSIAN", "PR", "EURASIAN"},
			}),
			"myinfo.nric_last_four_characters": "*****002G",
			"myinfo.is_age_above_18":           "true",
			"myinfo.is_age_above_21":           "true",
		}),
	},
	{
		ID:    "maria-dela-cruz",
		Label: "María José Dela Cruz: foreign worker on a work pass",
		Data: withNA(map[string]string{
			"myinfo.name":                            "MARÍA JOSÉ DELA CRUZ",
			"myinfo.nric_number":                     "G0000003K",
			"myinfo.date_of_birth":                   "1990",
			"myinfo.passport_number":                 "P0000003A",
			"myinfo.passport_expiry_date":            "2028-10-01",
			"myinfo.mobile_number":                   "80000003",
			"myinfo.mobile_number_with_country_code": "+65 80000003",
			"myinfo.email":                           "maria.delacruz@example.org",
			"myinfo.registered_address":              "10 SOMERSET ROAD\n#05-12\nSINGAPORE 238164",
			"myinfo.sex":                             "FEMALE",
			"myinfo.race":                            "FILIPINO",
			"myinfo.nationality":                     "FILIPINO",
			"myinfo.residentialstatus":               "ALIEN",
			"myinfo.birth_country":                   "PHILIPPINES",
			"myinfo.vehicles":                        "[]",
			"myinfo.name_of_employer":                "SUNRISE NURSING HOME PTE. LTD.",
			"myinfo.workpass_status":                 "Active",
			"myinfo.workpass_expiry_date":            "2027-01-31",
			"myinfo.marital_status":                  "SINGLE",
			"myinfo.occupation":                      "NURSE",
			"myinfo.nric_last_four_characters":       "*****003K",
			"myinfo.is_age_above_18":                 "true",
			"myinfo.is_age_above_21":                 "true",
		}),
	},
	{
		ID:    "chen-mei-ling",
		Label: "陈美玲 Chen Mei Ling: public officer, two appointments",
		Data: withNA(map[string]string{
			"myinfo.name":                            "CHEN MEI LING 陈美玲",
			"myinfo.nric_number":                     "S0000004C",
			"myinfo.date_of_birth":                   "1975-11-02",
			"myinfo.passport_number":                 "E0000004D",
			"myinfo.passport_expiry_date":            "2027-04-30",
			"myinfo.mobile_number":                   "90000004",
			"myinfo.mobile_number_with_country_code": "+65 90000004",
			"myinfo.email":                           "chen_mei_ling@agency.example",
			"myinfo.registered_address":              "BLK 456 TAMPINES STREET 42\n#08-88\nSINGAPORE 520456",
			"myinfo.sex":                             "FEMALE",
			"myinfo.race":                            "CHINESE",
			"myinfo.nationality":                     "SINGAPOREAN",
			"myinfo.residentialstatus":               "SINGAPORE CITIZEN",
			"myinfo.housingtype":                     "HDB",
			"myinfo.hdbtype":                         "5-ROOM FLAT (HDB)",
			"myinfo.birth_country":                   "MALAYSIA",
			"myinfo.vehicles":                        mustJSON([]vehicle{{"SMB8888C"}}),
			"myinfo.name_of_employer":                "GOVERNMENT TECHNOLOGY AGENCY",
			"myinfo.marital_status":                  "WIDOWED",
			"myinfo.dialect":                         "CANTONESE",
			"myinfo.occupation":                      "SOFTWARE ENGINEER",
			"myinfo.country_of_marriage":             "SINGAPORE",
			"myinfo.marriage_certificate_number":     "18442",
			"myinfo.marriage_date":                   "2001-05",
			"myinfo.children_birth_records":          "[]",
			"myinfo.sponsored_children_records":      "[]",
			"myinfo.nric_last_four_characters":       "*****004C",
			"myinfo.is_age_above_18":                 "true",
			"myinfo.is_age_above_21":                 "true",
			"pocdex.public_officer_details": mustJSON([]publicOfficerEmployment{
				{"chen_mei_ling@agency.example", "Government Technology Agency", "Government Digital Services", "Permanent", "Senior Software Engineer"},
				{"chen_mei_ling@ministry.example", "Ministry of Digital Development and Information", "", "Secondment", "Deputy Director (Digital Identity)"},
			}),
			"pocdex.number_of_employments": "2",
		}),
	},
	{
		ID:    "lee-jun-wei",
		Label: "Lee Jun Wei: teenager, most fields NA",
		Data: withNA(map[string]string{
			"myinfo.name":                      "LEE JUN WEI",
			"myinfo.nric_number":               "T1200005C",
			"myinfo.date_of_birth":             "2012-08-20",
			"myinfo.sex":                       "MALE",
			"myinfo.race":                      "CHINESE",
			"myinfo.nationality":               "SINGAPOREAN",
			"myinfo.residentialstatus":         "SINGAPORE CITIZEN",
			"myinfo.birth_country":             "SINGAPORE",
			"myinfo.nric_last_four_characters": "*****005C",
			"myinfo.is_age_above_18":           "false",
			"myinfo.is_age_above_21":           "false",
		}),
	},
}
