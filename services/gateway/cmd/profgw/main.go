package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

func main() {
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:16390"
	cfg.WorkDir = os.Args[1]
	srv, err := gatewayserver.New(cfg, nil)
	if err != nil {
		panic(err)
	}
	srv.Start()
	go http.ListenAndServe("127.0.0.1:16391", nil)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	<-c
	srv.Close()
}
