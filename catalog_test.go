package caddysgid

import (
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestUnknownScopeWarnsWithTheNearestCatalogName(t *testing.T) {
	type warning struct{ msg, scope string }
	for _, tt := range []struct {
		name   string
		scopes []string
		want   []warning
	}{
		{"catalog scopes", []string{"openid", "myinfo.name", "pocdex.number_of_employments"}, nil},
		{"two letters swapped", []string{"openid", "myinfo.nmae"}, []warning{{"sgid scope is not in sgID's data catalog: did you mean myinfo.name?", "myinfo.nmae"}}},
		{"a letter left out", []string{"openid", "myinfo.emal", "myinfo.name"}, []warning{{"sgid scope is not in sgID's data catalog: did you mean myinfo.email?", "myinfo.emal"}}},
		{"nothing near", []string{"openid", "myinfo.shoe_size"}, []warning{{"sgid scope is not in sgID's data catalog: check its spelling, unless sgID added it since", "myinfo.shoe_size"}}},
		{"each one", []string{"openid", "myinfo.nmae", "myinfo.sx"}, []warning{
			{"sgid scope is not in sgID's data catalog: did you mean myinfo.name?", "myinfo.nmae"},
			{"sgid scope is not in sgID's data catalog: did you mean myinfo.sex?", "myinfo.sx"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			warnUnknownScopes(zap.New(core), tt.scopes)
			var got []warning
			for _, e := range logs.All() {
				got = append(got, warning{e.Message, e.ContextMap()["scope"].(string)})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings = %q, want %q", got, tt.want)
			}
		})
	}
}
