package sgid

import "slices"

// Catalog returns every scope in sgID's data catalog (the developer docs'
// Data Catalog page), "openid" first. sgID adds scopes over time, so a scope
// outside it is most likely a typo, not necessarily an error.
func Catalog() []string { return slices.Clone(catalog) }

// InCatalog reports whether scope is in sgID's data catalog.
func InCatalog(scope string) bool { return slices.Contains(catalog, scope) }

var catalog = []string{
	"openid",
	"myinfo.name", "myinfo.nric_number", "myinfo.date_of_birth", "myinfo.passport_number",
	"myinfo.passport_expiry_date", "myinfo.mobile_number", "myinfo.mobile_number_with_country_code",
	"myinfo.email", "myinfo.registered_address", "myinfo.sex", "myinfo.race", "myinfo.nationality",
	"myinfo.residentialstatus", "myinfo.housingtype", "myinfo.hdbtype", "myinfo.birth_country",
	"myinfo.vehicles", "myinfo.name_of_employer", "myinfo.workpass_status",
	"myinfo.workpass_expiry_date", "myinfo.marital_status", "myinfo.dialect", "myinfo.occupation",
	"myinfo.country_of_marriage", "myinfo.marriage_certificate_number", "myinfo.marriage_date",
	"myinfo.divorce_date", "myinfo.children_birth_records", "myinfo.sponsored_children_records",
	"myinfo.nric_last_four_characters", "myinfo.is_age_above_18", "myinfo.is_age_above_21",
	"pocdex.public_officer_details", "pocdex.number_of_employments",
}
