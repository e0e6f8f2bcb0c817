// Package gatewayserver runs nokv-redis in-process: New(cfg) opens the backend and
// binds the listeners, Start serves, Close shuts down cleanly. The command and
// tests packages use only this surface.
package gatewayserver
