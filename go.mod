module github.com/takumo/aegis

go 1.26
