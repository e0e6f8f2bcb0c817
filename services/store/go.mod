module github.com/nokv/nokv/services/store

go 1.26.0

require github.com/nokv/nokv/pkg v0.0.0

require github.com/caarlos0/env/v11 v11.4.2 // indirect

replace github.com/nokv/nokv/pkg => ../../pkg
