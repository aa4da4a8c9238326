const path = require('path');
const webpack = require('webpack');

module.exports = (env, argv) => ({
  entry: './src/index.ts',
  output: { path: path.resolve(__dirname, 'dist'), filename: '[name].[contenthash].js' },
  resolve: { extensions: ['.ts', '.tsx', '.js'] },
  module: { rules: [{ test: /\.tsx?$/, use: 'ts-loader', exclude: /node_modules/ }] },
  plugins: [
    new webpack.DefinePlugin({
      'process.env.API_URL': JSON.stringify(process.env.API_URL || 'http://localhost:8080'),
      'process.env.MAPS_API_KEY': JSON.stringify(process.env.MAPS_API_KEY),
      'process.env.AUTH_CLIENT_ID': JSON.stringify(process.env.AUTH_CLIENT_ID),
    }),
  ],
  devServer: { port: 5173, historyApiFallback: true, proxy: { '/api': 'http://localhost:8080' } },
  devtool: argv.mode === 'production' ? false : 'eval-source-map',
});
