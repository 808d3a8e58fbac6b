package sgidtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// choice is what a person does at the consent step: log in as a persona, or
// cancel.
type choice struct {
	persona string
	cancel  bool
}

// values is the choice in the terms of the chooser page's links, which are
// also the terms of consentHeader.
func (c choice) values() url.Values {
	if c.cancel {
		return url.Values{"cancel": {"1"}}
	}
	return url.Values{"persona": {c.persona}}
}

// parseChoice reads a choice from a chooser link's query or consentHeader;
// it is false for a persona the server does not know.
func parseChoice(q url.Values) (choice, bool) {
	c := choice{persona: q.Get("persona"), cancel: q.Get("cancel") != ""}
	if c.cancel {
		return choice{cancel: true}, true
	}
	_, ok := personaByID(c.persona)
	return c, ok
}

// consentHeader, on an authorization request, carries the choice a person
// would make on the chooser page, so that Authorize and Cancel need no HTML.
// The request still passes every check of the authorize endpoint first; the
// header only stands in for the person, whom the chooser page lets choose
// any persona anyway.
const consentHeader = "Sgidtest-Consent"

// errorHeader repeats an error page's reason for Authorize's error.
const errorHeader = "Sgidtest-Error"

// answer sends the browser back to the client with the person's choice.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, req authRequest, c choice) {
	if c.cancel {
		redirectError(w, r, req, "access_denied", "the user cancelled the login")
		return
	}
	s.redirectWithCode(w, r, req, c.persona)
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Authorize does what a browser and a person do with authURL, an
// authorization URL as the relying party under test built it: the browser
// requests it and the person logs in as personaID, whether the server shows
// the chooser or consents automatically. An empty personaID is the persona
// automatic consent picks (Options.Persona, SetPersona).
//
// It returns the URL the server sends the browser to: the relying party's
// redirect_uri with a code and the state, or with an OAuth error (such as
// invalid_scope) if the request broke a rule that sgID answers with a
// redirect. It returns an error, and no URL, if authURL is not this server's
// authorization endpoint, if personaID is not a persona, or if the server
// sends the browser nowhere: an error page (an unknown client_id or
// redirect_uri) or an injected fault.
//
// The request goes to the server's own listener, so authURL may name a
// PublicURL the test cannot reach; it counts as one authorize request, and
// faults on EndpointAuthorize apply to it.
func (s *Server) Authorize(ctx context.Context, authURL, personaID string) (callbackURL string, err error) {
	if personaID == "" {
		_, _, personaID, _ = s.snapshot()
	} else if _, ok := personaByID(personaID); !ok {
		return "", fmt.Errorf("unknown persona %q", personaID)
	}
	return s.consent(ctx, authURL, choice{persona: personaID})
}

// Cancel is Authorize for a person who presses Cancel instead of logging in:
// the URL it returns carries error=access_denied and the state.
func (s *Server) Cancel(ctx context.Context, authURL string) (callbackURL string, err error) {
	return s.consent(ctx, authURL, choice{cancel: true})
}

func (s *Server) consent(ctx context.Context, authURL string, c choice) (string, error) {
	endpoint := s.Issuer() + "/oauth/authorize"
	u, err := url.Parse(authURL)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != endpoint {
		return "", fmt.Errorf("%q is not this server's authorization endpoint %s", authURL, endpoint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.listenerURL()+u.Path+"?"+u.RawQuery, nil)
	if err != nil {
		return "", fmt.Errorf("authorization request: %w", err)
	}
	req.Header.Set(consentHeader, c.values().Encode())
	resp, err := noRedirects.Do(req)
	if err != nil {
		return "", fmt.Errorf("authorization request: %w", err)
	}
	defer resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && loc != "" {
		return loc, nil
	}
	why := resp.Header.Get(errorHeader)
	if why == "" { // an injected fault's body
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		why = string(b)
	}
	return "", fmt.Errorf("authorize answered %d, not a redirect to the client: %s", resp.StatusCode, why)
}
