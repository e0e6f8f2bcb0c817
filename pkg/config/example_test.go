package config_test

import (
	"fmt"
	"log"

	"github.com/nokv/nokv/pkg/config"
)

func ExampleLoad() {
	cluster, err := config.Load("../../raft_config.example.json")
	if err != nil {
		log.Fatal(err)
	}
	addr, err := cluster.StoreAddr(2, config.ScopeDocker)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cluster.PDAddr(config.ScopeHost))
	fmt.Println(addr)
	fmt.Printf("%q-%q\n", cluster.Regions[0].StartKey, cluster.Regions[0].EndKey)
	// Output:
	// 127.0.0.1:2379
	// nokv-store-2:20160
	// ""-"hex:000000006d"
}

func ExampleParse_error() {
	_, err := config.Parse([]byte(`{"pd": {"addr": "127.0.0.1:2379"}, "stores": [{"store_id": "1"}]}`))
	fmt.Println(err)
	// Output:
	// config: stores[0].store_id: cannot use JSON string as non-negative integer
}
