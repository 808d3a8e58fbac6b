package sgidtest

import "time"

// store holds the server's short-lived grants. It is guarded by Server.mu.
type store struct {
	codes   map[string]*authCode
	tokens  map[string]*accessToken
	pending map[string]*pendingAuth
	inserts int
}

func newStore() store {
	return store{
		codes:   make(map[string]*authCode),
		tokens:  make(map[string]*accessToken),
		pending: make(map[string]*pendingAuth),
	}
}

// authRequest is a validated authorization request.
type authRequest struct {
	clientID, redirectURI, state, nonce, challenge string
	scopes                                         []string
}

// authCode binds a code to everything the token request must match.
type authCode struct {
	req     authRequest
	persona string
	expires time.Time
}

type accessToken struct {
	persona string
	scopes  []string
	expires time.Time
}

// pendingAuth is an authorization request waiting on the chooser page.
type pendingAuth struct {
	req     authRequest
	expires time.Time
}

// pendingTTL is how long a person may look at the chooser page: generous,
// because a demo audience reads it.
const pendingTTL = 15 * time.Minute

// sweepEvery bounds memory in long benchmarks without a timer goroutine:
// expired entries are dropped every so many inserts.
const sweepEvery = 1024

// put stores an entry under a fresh random key of n bytes: insert adds it, with
// s.mu held, given the key and the time. Every insert comes through here, so that
// afterInsert counts them all.
func (s *Server) put(n int, insert func(key string, now time.Time)) string {
	key := randomToken(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	insert(key, s.now())
	s.afterInsert()
	return key
}

func (s *Server) putCode(req authRequest, persona string) string {
	return s.put(32, func(code string, now time.Time) {
		s.state.codes[code] = &authCode{req: req, persona: persona, expires: now.Add(s.codeTTL)}
	})
}

// takeCode removes the code before anything checks it, so a code is spent
// by its first use even when that use fails; with Faults.ReusableCodes it
// stays, as on servers that accept a code more than once.
func (s *Server) takeCode(code string) (*authCode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.state.codes[code]
	if !s.faults.ReusableCodes {
		delete(s.state.codes, code)
	}
	return c, ok
}

func (s *Server) putToken(persona string, scopes []string) string {
	return s.put(32, func(token string, now time.Time) {
		s.state.tokens[token] = &accessToken{persona: persona, scopes: scopes, expires: now.Add(s.tokenTTL)}
	})
}

// lookUpToken leaves the token in place: like the real server's, access
// tokens work until they expire, however often they are used.
func (s *Server) lookUpToken(token string) (*accessToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.state.tokens[token]
	if !ok || !s.now().Before(t.expires) {
		return nil, false
	}
	return t, true
}

func (s *Server) putPending(req authRequest) string {
	return s.put(16, func(id string, now time.Time) {
		s.state.pending[id] = &pendingAuth{req: req, expires: now.Add(pendingTTL)}
	})
}

// takePending spends a chooser page: its choices work once, like the code
// they lead to.
func (s *Server) takePending(id string) (authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.state.pending[id]
	delete(s.state.pending, id)
	if !ok || !s.now().Before(p.expires) {
		return authRequest{}, false
	}
	return p.req, true
}

// afterInsert must be called with s.mu held.
func (s *Server) afterInsert() {
	s.state.inserts++
	if s.state.inserts%sweepEvery != 0 {
		return
	}
	now := s.now()
	for k, c := range s.state.codes {
		if !now.Before(c.expires) {
			delete(s.state.codes, k)
		}
	}
	for k, t := range s.state.tokens {
		if !now.Before(t.expires) {
			delete(s.state.tokens, k)
		}
	}
	for k, p := range s.state.pending {
		if !now.Before(p.expires) {
			delete(s.state.pending, k)
		}
	}
}
