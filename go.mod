module github.com/samsa-io/samsa

go 1.26
