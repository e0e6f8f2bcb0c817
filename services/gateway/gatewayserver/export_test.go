package gatewayserver

// ServeWithRedcon makes servers started until restore is called use redcon's
// goroutine-per-connection server even where the event loop exists.
func ServeWithRedcon() (restore func()) {
	eventLoopEnabled = false
	return func() { eventLoopEnabled = true }
}
