package gateway

// primeStack grows the calling goroutine's stack, while it is still shallow,
// to what serving a request through reverse_proxy reaches. HTTP/2 and HTTP/3
// serve each request on a new goroutine, whose stack otherwise grows several
// times on the way down (the cookie's opening, reverse_proxy's round trip and
// its copy), each time copying every frame above: profiles of an HTTP/2 load
// put that copying at several µs a request. On a goroutine whose stack is
// already this large (HTTP/1.1's, one per connection) it costs a frame.
//
//go:noinline
func primeStack() {
	var frame [primedStack]byte
	touch(frame[:])
}

// primedStack is the frame primeStack takes.
const primedStack = 16 << 10

//go:noinline
func touch(b []byte) { b[len(b)-1] = 0 }
