def registryPassword = 'Gr00vy-Reg!pw#71'
node {
    withEnv(["SLACK_TOKEN=xoxb-153519311720-7667465413646-urlGFb0EkjKWREhbiGjlvhkT"]) {
        sh 'notify.sh'
    }
    def apiKey = env.API_KEY
}
