package sgidtest

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCatalogMatchesProtocol(t *testing.T) {
	c := Catalog()
	if len(c) != 35 || c[0] != "openid" {
		t.Fatalf("catalog has %d scopes starting %q, want 35 starting openid", len(c), c[0])
	}
	for _, sc := range c[1:] {
		if !strings.HasPrefix(sc, "myinfo.") && !strings.HasPrefix(sc, "pocdex.") {
			t.Errorf("scope %q", sc)
		}
	}
	if sorted := slices.Compact(slices.Sorted(slices.Values(c))); len(sorted) != len(c) {
		t.Error("catalog has duplicates")
	}
	c[0] = "changed"
	if Catalog()[0] != "openid" {
		t.Error("Catalog returns shared state")
	}
}

func TestPersonasCoverTheCatalog(t *testing.T) {
	ps := Personas()
	if len(ps) < 4 {
		t.Fatalf("%d personas, want at least 4", len(ps))
	}
	covered := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range ps {
		if ids[p.ID] || p.ID != url.PathEscape(p.ID) || p.Label == "" {
			t.Errorf("persona %q: IDs must be unique and URL-safe, labels non-empty", p.ID)
		}
		ids[p.ID] = true
		for _, sc := range Catalog()[1:] {
			v, ok := p.Data[sc]
			if !ok {
				t.Errorf("%s lacks %s (want a value or NA)", p.ID, sc)
			}
			if v != "NA" {
				covered[sc] = true
			}
		}
		if len(p.Data) != len(Catalog())-1 {
			t.Errorf("%s has %d fields, want exactly the catalog's", p.ID, len(p.Data))
		}
	}
	for _, sc := range Catalog()[1:] {
		if !covered[sc] {
			t.Errorf("no persona has a value for %s", sc)
		}
	}
}

func TestPersonaValuesHaveRealShapes(t *testing.T) {
	date := regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2})?)?$`)
	nric := regexp.MustCompile(`^[STFGM]\d{7}[A-Z]$`)
	jsonArrays := []string{"myinfo.vehicles", "myinfo.children_birth_records", "myinfo.sponsored_children_records", "pocdex.public_officer_details"}
	var longestChildren, nonASCII int
	dateFormats := map[int]bool{}
	for _, p := range Personas() {
		d := p.Data
		for sc, v := range d {
			if !utf8.ValidString(v) || v == "" {
				t.Errorf("%s %s = %q", p.ID, sc, v)
			}
			if v == "NA" {
				continue
			}
			switch {
			case strings.HasSuffix(sc, "date") || strings.HasSuffix(sc, "date_of_birth"):
				if !date.MatchString(v) {
					t.Errorf("%s %s = %q, want YYYY, YYYY-MM or YYYY-MM-DD", p.ID, sc, v)
				}
				if sc == "myinfo.date_of_birth" {
					dateFormats[len(v)] = true
				}
			case strings.HasPrefix(sc, "myinfo.is_age_above_"):
				if v != "true" && v != "false" {
					t.Errorf("%s %s = %q", p.ID, sc, v)
				}
			case sc == "myinfo.nric_number":
				if !nric.MatchString(v) || d["myinfo.nric_last_four_characters"] != "*****"+v[5:] {
					t.Errorf("%s nric %q, last four %q", p.ID, v, d["myinfo.nric_last_four_characters"])
				}
			case sc == "myinfo.registered_address":
				if !strings.Contains(v, "\n") {
					t.Errorf("%s address %q has no newline", p.ID, v)
				}
			case slices.Contains(jsonArrays, sc):
				var arr []map[string]any
				if err := json.Unmarshal([]byte(v), &arr); err != nil {
					t.Errorf("%s %s is not a JSON array of objects: %v", p.ID, sc, err)
				}
				if sc == "myinfo.children_birth_records" {
					longestChildren = max(longestChildren, len(v))
				}
			}
		}
		if utf8.RuneCountInString(d["myinfo.name"]) != len(d["myinfo.name"]) {
			nonASCII++
		}
	}
	if longestChildren < 4096 {
		t.Errorf("longest children_birth_records is %d bytes, want a persona with at least 4 KiB", longestChildren)
	}
	if nonASCII == 0 {
		t.Error("no persona has a non-ASCII name")
	}
	if len(dateFormats) != 3 {
		t.Errorf("dates of birth use %d of the 3 formats", len(dateFormats))
	}
}

func TestPersonasReturnsACopy(t *testing.T) {
	Personas()[0].Data["myinfo.name"] = "MALLORY"
	if Personas()[0].Data["myinfo.name"] == "MALLORY" {
		t.Error("Personas shares its maps")
	}
}
