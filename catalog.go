package caddysgid

import (
	"slices"

	"go.uber.org/zap"
)

// scopeCatalog is sgID's data catalog: every scope its developer docs list
// (the Data Catalog page), openid first. A scope outside it is most likely a
// typo, but sgID adds scopes over time, so it is a warning at provisioning,
// never an error: a Caddy older than the catalog must still start.
// catalog_test.go keeps it equal to the fake server's (sgidtest.Catalog).
var scopeCatalog = []string{
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

// warnUnknownScopes logs a WARN for each scope not in sgID's catalog, with
// the catalog's nearest name when one is close. Scope names are
// configuration, never personal data.
func warnUnknownScopes(logger *zap.Logger, scopes []string) {
	for _, s := range scopes {
		if slices.Contains(scopeCatalog, s) {
			continue
		}
		fields := []zap.Field{zap.String("scope", s)}
		msg := "sgid scope is not in sgID's data catalog: check its spelling, unless sgID added it since"
		if n, ok := nearest(s, scopeCatalog); ok {
			msg = "sgid scope is not in sgID's data catalog: did you mean " + n + "?"
			fields = append(fields, zap.String("did_you_mean", n))
		}
		logger.Warn(msg, fields...)
	}
}
